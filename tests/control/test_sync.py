"""The blocking facade: sync_caller and active_client."""

from __future__ import annotations

import pytest

from switchy import Session, active_client, event_callback, sync_caller
from switchy.errors import APIError
from switchy.sim.pytest_plugin import FreeSwitchTarget
from switchy.sync import SyncClient

TIMEOUT = 10.0


def test_active_client_runs_commands_and_jobs(fs: FreeSwitchTarget) -> None:
    with active_client(fs.host, fs.port, fs.password) as client:
        assert client.api("status").startswith("UP ")
        assert client.cmd("echo  padded  ") == "padded"
        job = client.bgapi("echo from the background")
        assert job.get(TIMEOUT) == "from the background"
        assert job.successful()
        with pytest.raises(APIError, match="Command not found"):
            client.api("no_such_api")
        failed = client.originate("user_busy", endpoint="error", timeout=5)
        assert failed.wait(TIMEOUT)
        assert not failed.successful()
        assert failed.cause == "USER_BUSY"
        with pytest.raises(APIError):
            failed.get(0)


def test_a_blocking_call_inside_a_callback_is_refused(fs: FreeSwitchTarget) -> None:
    errors: list[str] = []
    handle: list[SyncClient] = []

    class Blocking:
        @event_callback("CHANNEL_PARK")
        def on_park(self, session: Session) -> None:
            if session.is_inbound():
                try:
                    handle[0].api("status")  # would wait for its own thread forever
                except RuntimeError as exc:
                    errors.append(str(exc))
                session.answer()

    with sync_caller(fs.host, fs.port, fs.password, apps={"Blocking": Blocking}) as caller:
        handle.append(caller.client)
        session, _ = caller(f"blocking@{fs.sip_address}", "Blocking", timeout=5)
        assert errors
        assert "event loop" in errors[0]
        session.hangup().result(TIMEOUT)
        caller.client.wait_for(lambda: caller.client.count_calls() == 0, TIMEOUT)


def test_waitfor_blocks_until_a_callback_sets_the_variable(fs: FreeSwitchTarget) -> None:
    class Flagging:
        @event_callback("CHANNEL_PARK")
        def on_park(self, session: Session) -> None:
            if session.is_inbound():
                session.answer()

        @event_callback("CHANNEL_ANSWER")
        def on_answer(self, session: Session) -> None:
            if session.is_outbound():
                session.vars["answered_here"] = True

    with sync_caller(fs.host, fs.port, fs.password, apps={"Flagging": Flagging}) as caller:
        session, waitfor = caller(
            f"flag@{fs.sip_address}", "Flagging", timeout=5, waitfor=("answered_here", TIMEOUT)
        )
        assert session.vars["answered_here"] is True
        assert waitfor(session, "answered_here", 1) is True
        with pytest.raises(TimeoutError):
            waitfor(session, "never_set", 0.1)
        caller.client.hupall()
        caller.client.wait_for(lambda: caller.client.count_calls() == 0, TIMEOUT)
