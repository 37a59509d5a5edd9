"""The core task scheduler of a simulated node (``switch_scheduler.c``).

``sched_api``, ``sched_hangup``, ``sched_transfer`` and ``sched_del`` go
through it. Tasks run at whole epoch seconds, as FreeSWITCH's task thread
runs them; each one fires ADD_SCHEDULE when added, RE_SCHEDULE when it runs
and repeats, and DEL_SCHEDULE when it is deleted or has run for the last time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from switchy.sim.calling import CallingSite

if TYPE_CHECKING:
    from switchy.sim.switch import Node

logger = logging.getLogger(__name__)

#: What a task does when it runs; setting ``task.runtime`` later makes it run again.
TaskAction = Callable[["Task"], Awaitable[None]]

#: Ids 1-3 are the core's own tasks in the traces (heartbeat, check_ip,
#: limit_hash_cleanup of mod_hash); that nothing else takes an id before the
#: first API-scheduled task is an assumption.
FIRST_TASK_ID = 4

# RE_SCHEDULE's line is in the traces; the others are estimates from the
# layout of switch_scheduler.c (unverified against 1.10.12).
_RE_SCHEDULE: CallingSite = ("switch_scheduler.c", "switch_scheduler_execute", 73)
_DONE: CallingSite = ("switch_scheduler.c", "switch_scheduler_execute", 81)
_ADD: CallingSite = ("switch_scheduler.c", "switch_scheduler_add_task", 240)
_DEL_ID: CallingSite = ("switch_scheduler.c", "switch_scheduler_del_task_id", 283)
_DEL_GROUP: CallingSite = ("switch_scheduler.c", "switch_scheduler_del_task_group", 312)


@dataclass(eq=False)
class Task:
    """One scheduled task (``switch_scheduler_task_t``)."""

    task_id: int
    desc: str
    group: str
    runtime: int
    repeat: int
    action: TaskAction
    timer: asyncio.Task[None] | None = field(default=None, repr=False)


class Scheduler:
    """The tasks of one node, run on its event loop."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._tasks: dict[int, Task] = {}
        self._next_id = FIRST_TASK_ID

    @property
    def tasks(self) -> list[Task]:
        """Pending tasks, oldest first."""
        return list(self._tasks.values())

    def add(self, runtime: int, desc: str, group: str, action: TaskAction) -> int:
        """Schedule ``action`` at ``runtime`` (epoch seconds); its task id.

        A runtime already past is read as a period, as ``switch_scheduler_add_task``
        does: the task runs that many seconds from now, then again every period.
        """
        now = int(self._node.clock())
        repeat = 0
        if runtime < now:
            repeat = runtime
            runtime += now
        task = Task(self._next_id, desc, group, runtime, repeat, action)
        self._next_id += 1
        self._tasks[task.task_id] = task
        self._fire("ADD_SCHEDULE", _ADD, task)
        task.timer = asyncio.get_running_loop().create_task(self._run(task))
        return task.task_id

    def delete(self, task_id: int) -> int:
        """``switch_scheduler_del_task_id``: how many tasks were deleted (0 or 1)."""
        task = self._tasks.get(task_id)
        if task is None:
            return 0
        self._fire("DEL_SCHEDULE", _DEL_ID, task)
        self._drop(task)
        return 1

    def delete_group(self, group: str) -> int:
        """``switch_scheduler_del_task_group``: delete every task of ``group``; how many."""
        doomed = [task for task in self._tasks.values() if group and task.group == group]
        for task in doomed:
            self._fire("DEL_SCHEDULE", _DEL_GROUP, task)
            self._drop(task)
        return len(doomed)

    def clear(self) -> None:
        """The task thread stops (shutdown, crash): tasks vanish without events."""
        for task in list(self._tasks.values()):
            self._drop(task)

    def _drop(self, task: Task) -> None:
        self._tasks.pop(task.task_id, None)
        if task.timer is not None and task.timer is not asyncio.current_task():
            task.timer.cancel()

    async def _run(self, task: Task) -> None:
        while task.task_id in self._tasks:
            delay = task.runtime - self._node.clock()
            if delay > 0:
                await asyncio.sleep(delay)
                continue  # due once the clock reads the runtime: timers may wake a hair early
            executed = int(self._node.clock())
            try:
                await task.action(task)
            except Exception:
                logger.exception("scheduled task %s (%s) failed", task.task_id, task.desc)
            if task.task_id not in self._tasks:
                return
            if task.repeat:
                task.runtime = int(self._node.clock()) + task.repeat
            if task.runtime > executed:
                self._fire("RE_SCHEDULE", _RE_SCHEDULE, task)
                continue
            self._fire("DEL_SCHEDULE", _DONE, task)
            self._drop(task)

    def _fire(self, name: str, site: CallingSite, task: Task) -> None:
        event = self._node.events.create(name, site)
        event.extend(
            [
                ("Task-ID", str(task.task_id)),
                ("Task-Desc", task.desc),
                ("Task-Group", task.group),
                ("Task-Runtime", str(task.runtime)),
            ]
        )
        self._node.fire(event)
