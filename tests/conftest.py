"""Fixtures shared by the test packages (the ``fs`` target comes from switchy's plugin)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from switchy import Call, Client
from switchy.models import Job
from switchy.sim.pytest_plugin import FreeSwitchTarget

#: How long the fixtures wait for the calls of a test to end.
CLEANUP_TIMEOUT = 10.0


@pytest.fixture
async def client(fs: FreeSwitchTarget) -> AsyncIterator[Client]:
    """A client of ``fs``; its calls are hung up after the test, which waits until they end."""
    async with Client(fs.host, fs.port, fs.password) as client:
        yield client
        await client.hupall()
        await client.tracker.wait_for(client.tracker.is_idle, CLEANUP_TIMEOUT)


async def both_legs(client: Client, job: Job, timeout: float) -> Call:
    """The call ``job`` originated, once the tracker has seen both of its legs."""
    tracker = client.tracker
    await tracker.wait_for(
        lambda: job.session is not None and job.session.call is not None, timeout
    )
    assert job.session is not None and job.session.call is not None
    call = job.session.call
    await tracker.wait_for(lambda: len(call) == 2, timeout)
    return call
