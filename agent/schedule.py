"""Interval jobs on the monotonic clock: wall-clock jumps (NTP, a dead RTC battery) change nothing.

apscheduler 3 (used before) plans every job in wall-clock datetimes. Measured with libfaketime
on 3.11.3 (1 s interval job): after the clock is set back an hour, the job did not run at all in
the next 6 s (it waits out the hour: polling stops, /metrics freezes); after a jump forward it
walks every missed beat (`Job._get_run_times`): 2.6 million datetimes and 1.3 s of CPU for a
30-day jump, so a box that boots at 1970 (no RTC battery) and then gets NTP time would stall
for many minutes and run out of memory. This scheduler sleeps on the event loop's clock
(monotonic), so neither can happen; it keeps the small part of apscheduler's API the daemon used.

Semantics (the ones the daemon relies on): a job never overlaps itself; a beat missed because the
previous run overran is skipped, not stacked; the next beat is due one interval after the
previous one was due, so a job does not drift. Synchronous functions run in the loop's default
thread pool (as apscheduler's AsyncIOExecutor did), coroutines on the loop.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

log = logging.getLogger(__name__)

# A job that has not started for this many intervals is stuck (a run that never ends).
STUCK_INTERVALS = 3
# Wall clock moving this much against the monotonic clock between two looks is a jump.
CLOCK_JUMP_SECONDS = 2.0
_CLOCK_LOOK_SECONDS = 5.0
# Upper bounds of the start-delay histogram: how late a run began against its due time.
START_DELAY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass
class Job:
    id: str
    func: Callable[[], Any]
    interval: float
    added: float  # monotonic time the job was added
    started: float | None = None  # monotonic time of the latest start
    finished: float | None = None
    runs: int = 0
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def stuck(self, now: float) -> bool:
        """Not started for STUCK_INTERVALS intervals (a run that never ends, or never began)."""
        last = self.started if self.started is not None else self.added
        return now - last > STUCK_INTERVALS * self.interval + 1


class MonotonicScheduler:
    """Runs `add_job` jobs until `shutdown()`. Create and use it inside the running loop."""

    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self._jobs: dict[str, Job] = {}
        self._running = False
        self._wall = wall
        self._watch: asyncio.Task[None] | None = None
        self.clock_jumps = 0  # wall-clock jumps seen while running
        self._pending_delay: dict[str, float] = {}  # first delays of jobs added before start()
        # A busy event loop starts runs late; an overrun skips beats (an overloaded hub).
        self.start_delays = [0] * (len(START_DELAY_BUCKETS) + 1)  # runs per bucket, +Inf last
        self.start_delay_sum = 0.0
        self.skipped_runs = 0

    @property
    def running(self) -> bool:
        return self._running

    def add_job(
        self,
        func: Callable[[], Any],
        trigger: Literal["interval"],
        *,
        seconds: float,
        id: str,
        next_run_time: datetime | None = None,
        max_instances: int = 1,
        coalesce: bool = True,
        misfire_grace_time: float | None = None,
    ) -> Job:
        """apscheduler's call shape. `next_run_time` only sets the first delay (from now);
        max_instances=1 and coalesce=True are the only behaviour there is, and a missed beat is
        always skipped, so `misfire_grace_time` has nothing to tune."""
        if trigger != "interval" or max_instances != 1 or not coalesce or seconds <= 0:
            raise ValueError(f"job {id}: only non-overlapping interval jobs are supported")
        del misfire_grace_time
        if id in self._jobs:
            raise ValueError(f"job {id} already exists")
        delay = seconds
        if next_run_time is not None:
            delay = max(0.0, (next_run_time - datetime.now(next_run_time.tzinfo)).total_seconds())
        job = self._jobs[id] = Job(id, func, float(seconds), time.monotonic())
        if self._running:
            job.task = asyncio.create_task(self._loop(job, delay), name=f"job:{id}")
        else:
            self._pending_delay[id] = delay
        return job

    def get_job(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def get_jobs(self) -> list[Job]:
        return list(self._jobs.values())

    def remove_job(self, job_id: str) -> None:
        """Stop scheduling the job; a run in progress is cancelled."""
        job = self._jobs.pop(job_id)
        self._pending_delay.pop(job_id, None)
        if job.task is not None:
            job.task.cancel()

    def stuck_jobs(self) -> list[str]:
        if not self._running:
            return []
        now = time.monotonic()
        # Read from the HTTP thread while the loop may add or remove jobs: iterate a copy.
        return sorted(j.id for j in list(self._jobs.values()) if j.stuck(now))

    def start(self) -> None:
        self._running = True
        for job_id, delay in self._pending_delay.items():
            job = self._jobs[job_id]
            job.task = asyncio.create_task(self._loop(job, delay), name=f"job:{job_id}")
        self._pending_delay.clear()
        self._watch = asyncio.create_task(self._watch_clock(), name="clock-watch")

    def shutdown(self, wait: bool = False) -> None:
        """Cancel every job (`wait` is accepted for apscheduler's call shape; runs are cut)."""
        del wait
        self._running = False
        for job in self._jobs.values():
            if job.task is not None:
                job.task.cancel()
        if self._watch is not None:
            self._watch.cancel()

    async def _loop(self, job: Job, delay: float) -> None:
        due = time.monotonic() + delay
        while True:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            job.started = time.monotonic()
            self._observe_start_delay(max(0.0, job.started - due))
            job.runs += 1
            try:
                await self._call(job.func)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job %s failed", job.id)
            job.finished = now = time.monotonic()
            due += job.interval
            if due <= now:  # overran: skip the missed beats, keep the phase
                missed = (now - due) // job.interval + 1
                self.skipped_runs += int(missed)
                due += job.interval * missed

    def _observe_start_delay(self, delay: float) -> None:
        self.start_delay_sum += delay
        for n, bound in enumerate(START_DELAY_BUCKETS):
            if delay <= bound:
                self.start_delays[n] += 1
                return
        self.start_delays[-1] += 1

    @staticmethod
    async def _call(func: Callable[[], Any]) -> None:
        if inspect.iscoroutinefunction(func):
            await func()
        else:
            await asyncio.get_running_loop().run_in_executor(None, func)

    async def _watch_clock(self) -> None:
        """Count and log wall-clock jumps; the jobs do not care, but a person may."""
        offset = self._wall() - time.monotonic()
        while True:
            await asyncio.sleep(_CLOCK_LOOK_SECONDS)
            now = self._wall() - time.monotonic()
            if abs(now - offset) > CLOCK_JUMP_SECONDS:
                self.clock_jumps += 1
                log.warning(
                    "the system clock jumped by %+.0f s; polling keeps its pace (monotonic clock)",
                    now - offset,
                )
            offset = now
