"""The scheduler's own accounting of late starts and skipped beats, as /metrics shows it."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agent.reload import ReloadStatus
from agent.schedule import MonotonicScheduler
from exporters.runtime import RuntimeCollector


def test_an_overrunning_job_counts_skipped_beats_and_every_start():
    async def scenario() -> MonotonicScheduler:
        scheduler = MonotonicScheduler()
        runs = 0

        async def hog() -> None:  # blocks the loop for four intervals
            nonlocal runs
            runs += 1
            time.sleep(0.2)

        scheduler.add_job(hog, "interval", seconds=0.05, id="hog")
        scheduler.start()
        while runs < 3:
            await asyncio.sleep(0.01)
        scheduler.shutdown()
        return scheduler

    scheduler = asyncio.run(scenario())
    collector = RuntimeCollector(ReloadStatus(), scheduler, None)
    samples = {
        s.name + str(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(generate_latest(collector).decode())
        for s in family.samples
    }
    assert samples["erozgar_agent_scheduler_skipped_runs_total[]"] >= 6  # 3 runs x >= 3 beats
    assert samples["erozgar_agent_scheduler_start_delay_seconds_count[]"] >= 3
    assert samples["erozgar_agent_scheduler_start_delay_seconds_bucket[('le', '+Inf')]"] >= 3
