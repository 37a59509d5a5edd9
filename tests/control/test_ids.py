"""Random identifiers: the uuids switchy gives calls and jobs."""

from __future__ import annotations

import os
import uuid

import pytest

from switchy import ids


def test_new_uuids_are_random_version_4() -> None:
    made = {ids.new_uuid() for _ in range(1000)}
    assert len(made) == 1000
    for text in made:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_makes_other_uuids_than_its_parent() -> None:
    """Generators forked from one process must never originate the same uuid."""
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.write(write, ",".join(ids.new_uuid() for _ in range(100)).encode())
        os._exit(0)
    os.close(write)
    mine = {ids.new_uuid() for _ in range(100)}
    with os.fdopen(read, "rb") as pipe:
        theirs = set(pipe.read().decode().split(","))
    os.waitpid(child, 0)
    assert len(theirs) == 100
    assert not mine & theirs
