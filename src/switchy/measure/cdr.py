"""The call detail record of a load test: one row per offered call.

Every call the load generator offers gets exactly one row, written when its
last leg has hung up (or at once when the generator blocked it). Times are
seconds since the epoch (floats): ``*_time`` fields named after a channel
event come from that event's ``Event-Date-Timestamp`` (FreeSWITCH's clock);
``scheduled_time``, ``request_time``, ``job_launch_time`` and
``job_result_time`` from the generator's own clock. Both clocks agree when
FreeSWITCH runs on the generator's host; otherwise they differ by the hosts'
clock offset.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = ["ANSWERED", "BLOCKED", "COLUMNS", "FAILED", "NODE_LOST", "OUTCOMES", "CallRecord"]

#: The call was answered (both legs up).
ANSWERED = "answered"
#: The call was attempted and not answered: ``failure_cause`` says why.
FAILED = "failed"
#: The generator did not attempt the call: ``limit`` calls were already up.
BLOCKED = "blocked"
OUTCOMES = (ANSWERED, FAILED, BLOCKED)

#: ``failure_cause`` of the calls a FreeSWITCH node took with it when it went away.
NODE_LOST = "NODE_LOST"


@dataclass(slots=True)
class CallRecord:
    """One offered call. Fields a call never reached stay None."""

    #: Position of this call among all calls offered in the run (0, 1, 2, ...).
    offered_index: int
    #: When the arrival process scheduled the call.
    scheduled_time: float
    #: ``answered``, ``failed`` or ``blocked`` (see the constants of this module).
    outcome: str
    #: App id the call ran under, and the node (``host:port``) that originated it.
    app: str | None = None
    node: str | None = None
    #: Why a failed call failed: the originate's hangup cause (``USER_BUSY``...),
    #: or the caller's hangup cause when it ended before being answered.
    failure_cause: str | None = None
    caller_hangup_cause: str | None = None
    callee_hangup_cause: str | None = None
    #: Generator clock: originate requested, bgapi accepted, BACKGROUND_JOB received.
    request_time: float | None = None
    job_launch_time: float | None = None
    job_result_time: float | None = None
    #: FreeSWITCH clock, calling (originated, outbound) leg.
    caller_create_time: float | None = None
    caller_progress_time: float | None = None
    caller_progress_media_time: float | None = None
    caller_answer_time: float | None = None
    caller_hangup_time: float | None = None
    #: FreeSWITCH clock, called (inbound) leg, when it came back to a generator.
    callee_create_time: float | None = None
    callee_answer_time: float | None = None
    callee_hangup_time: float | None = None
    #: Sessions and calls up on the originating node when the caller leg was created.
    active_sessions_at_create: int | None = None
    active_calls_at_create: int | None = None
    #: Holding time the generator planned for the call (seconds).
    holding_time: float | None = None
    caller_uuid: str | None = None
    callee_uuid: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: (column name, type name) in record order; types: "int", "float", "str".
COLUMNS: tuple[tuple[str, str], ...] = tuple(
    (field.name, str(field.type).replace(" | None", "")) for field in dataclasses.fields(CallRecord)
)
