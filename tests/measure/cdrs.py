"""CDRs with known answers, and simulated runs, for the measure tests."""

from __future__ import annotations

import heapq
import random

from switchy.measure.cdr import ANSWERED, BLOCKED, FAILED, CallRecord

#: Epoch time the hand-made CDR starts at.
T = 1_700_000_000.0


def hand_made() -> list[CallRecord]:
    """Six offered calls whose every metric is worked out in test_metrics.py."""
    return [
        CallRecord(
            0,
            T + 0.0,
            ANSWERED,
            app="a",
            node="n1",
            request_time=T + 0.010,
            job_launch_time=T + 0.012,
            job_result_time=T + 0.050,
            caller_create_time=T + 0.020,
            caller_progress_time=T + 0.120,
            caller_progress_media_time=T + 0.100,
            caller_answer_time=T + 0.320,
            caller_hangup_time=T + 10.320,
            callee_create_time=T + 0.060,
            callee_answer_time=T + 0.300,
            callee_hangup_time=T + 10.330,
            caller_hangup_cause="NORMAL_CLEARING",
            active_calls_at_create=0,
            active_sessions_at_create=0,
            holding_time=10.0,
        ),
        CallRecord(  # answered without ringing: no progress event
            1,
            T + 1.0,
            ANSWERED,
            app="b",
            node="n1",
            request_time=T + 1.020,
            job_result_time=T + 1.100,
            caller_create_time=T + 1.030,
            caller_answer_time=T + 1.530,
            caller_hangup_time=T + 6.530,
            callee_answer_time=T + 1.500,
            callee_hangup_time=T + 6.540,
            active_calls_at_create=1,
            active_sessions_at_create=2,
            holding_time=5.0,
        ),
        CallRecord(
            2,
            T + 2.0,
            FAILED,
            app="a",
            node="n2",
            failure_cause="USER_BUSY",
            request_time=T + 2.000,
            job_result_time=T + 2.200,
            caller_create_time=T + 2.010,
            caller_progress_time=T + 2.100,
            caller_hangup_time=T + 2.190,
        ),
        CallRecord(  # refused before any channel was created
            3,
            T + 3.0,
            FAILED,
            app="a",
            node="n2",
            failure_cause="NORMAL_CIRCUIT_CONGESTION",
            request_time=T + 3.005,
            job_result_time=T + 3.060,
        ),
        CallRecord(4, T + 3.5, BLOCKED, app="a"),
        CallRecord(  # failed without a cause
            5,
            T + 4.0,
            FAILED,
            app="b",
            node="n1",
            request_time=T + 4.000,
            caller_create_time=T + 4.010,
            caller_hangup_time=T + 4.500,
            job_result_time=T + 4.510,
        ),
    ]


def simulated_run(
    calls: int,
    rate: float,
    holding: float,
    limit: int,
    *,
    seed: int = 1,
    start: float = T,
    busy_every: int = 0,
) -> list[CallRecord]:
    """An M/M/N/N loss system: Poisson arrivals, exponential holding, ``limit`` channels.

    Calls arriving while ``limit`` calls are up are blocked; every ``busy_every``-th
    attempted call fails with USER_BUSY after 50 ms. Setup takes 80 ms, the call
    then holds for its drawn time; occupancy is setup + holding.
    """
    draw = random.Random(seed)
    records: list[CallRecord] = []
    releases: list[float] = []
    now = start
    attempted = 0
    for index in range(calls):
        now += draw.expovariate(rate)
        while releases and releases[0] <= now:
            heapq.heappop(releases)
        if len(releases) >= limit:
            records.append(CallRecord(index, now, BLOCKED, app="load"))
            continue
        attempted += 1
        create = now + 0.002
        if busy_every and attempted % busy_every == 0:
            end = create + 0.050
            records.append(
                CallRecord(
                    index,
                    now,
                    FAILED,
                    app="load",
                    node="n1",
                    failure_cause="USER_BUSY",
                    request_time=now,
                    job_result_time=end,
                    caller_create_time=create,
                    caller_hangup_time=end,
                )
            )
            heapq.heappush(releases, end)
            continue
        hold = draw.expovariate(1.0 / holding)
        answer = create + 0.080
        end = answer + hold
        records.append(
            CallRecord(
                index,
                now,
                ANSWERED,
                app="load",
                node="n1",
                request_time=now,
                job_result_time=answer,
                caller_create_time=create,
                caller_progress_time=create + 0.030,
                caller_answer_time=answer,
                caller_hangup_time=end,
                callee_answer_time=answer - 0.004,
                callee_hangup_time=end + 0.001,
                holding_time=hold,
            )
        )
        heapq.heappush(releases, end + 0.001)
    return records
