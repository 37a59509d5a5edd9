"""The FreeSWITCH build the simulator impersonates (the traces' 1.10.12)."""

from __future__ import annotations

#: ``FreeSWITCH-Version`` and the ``version`` API.
VERSION_FULL = "1.10.12-release+git~20260821T141014Z~cc93a683ca~64bit"
#: The revision part of ``version`` and ``status``.
VERSION_REVISION = "git cc93a68 2026-08-21 14:10:14Z 64bit"
VERSION_SHORT = "1.10.12"
#: The SIP User-Agent of mod_sofia.
USER_AGENT = f"FreeSWITCH-mod_sofia/{VERSION_FULL}"
