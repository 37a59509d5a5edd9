"""Random identifiers: version 4 UUIDs, as FreeSWITCH and ``uuid.uuid4`` make them."""

from __future__ import annotations

import os
import random

# Not uuid.uuid4: that reads the system's random source (a system call) for
# every uuid, and a call needs several. Nothing here needs unpredictable ids,
# only unique ones: 122 random bits from a generator seeded by the system's
# random source, reseeded in a forked child so that parent and child never
# share a sequence. An own generator leaves the random module's to its users.
_random = random.Random()
os.register_at_fork(after_in_child=_random.seed)

_VERSION_MASK = ~(0xF000 << 64) & ~(0xC000 << 48)
_VERSION_BITS = (4 << 76) | (0x8000 << 48)


def new_uuid() -> str:
    """A random version 4 UUID, as text (like ``str(uuid.uuid4())``)."""
    text = "%032x" % (_random.getrandbits(128) & _VERSION_MASK | _VERSION_BITS)
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
