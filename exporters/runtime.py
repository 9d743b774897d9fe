"""The agent's own machinery on /metrics: config reloads, endpoint refusals, the scheduler.

erozgar_agent_config_reload_success 1.0
erozgar_agent_config_last_reload_success_timestamp_seconds 1.7e9
erozgar_http_auth_failures_total{reason="wrong_password"} 3.0
erozgar_agent_scheduler_stuck_jobs 0.0
erozgar_agent_clock_jumps_total 1.0
erozgar_agent_scheduler_start_delay_seconds_bucket{le="0.005"} 120.0
erozgar_agent_scheduler_skipped_runs_total 0.0
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from agent.reload import ReloadStatus
from agent.schedule import START_DELAY_BUCKETS, MonotonicScheduler

from .auth import REASONS, AuthGate
from .families import Families


class RuntimeCollector(Collector):
    def __init__(
        self, reload: ReloadStatus, scheduler: MonotonicScheduler, gate: AuthGate | None
    ) -> None:
        self.reload = reload
        self.scheduler = scheduler
        self.gate = gate

    def collect(self) -> Iterator[Metric]:
        out = Families()
        out.gauge(
            "agent_config_reload_success", "1 if the latest config (re)load succeeded.", []
        ).add_metric([], 1.0 if self.reload.success else 0.0)
        out.gauge(
            "agent_config_last_reload_success_timestamp_seconds",
            "Unix time of the latest successful config load.",
            [],
        ).add_metric([], self.reload.last_success)
        failures = out.counter(
            "http_auth_failures_total",
            "Requests or connections the endpoint refused, by reason.",
            ["reason"],
        )
        counts = dict(self.gate.failures) if self.gate is not None else {}
        for reason in REASONS:  # all reasons from the start, so rate() sees the first one
            failures.add_metric([reason], counts.get(reason, 0))
        out.gauge(
            "agent_scheduler_stuck_jobs",
            "Jobs (device polls, probes) that have not started for three intervals.",
            [],
        ).add_metric([], len(self.scheduler.stuck_jobs()))
        out.counter(
            "agent_clock_jumps_total",
            "Jumps of the system clock seen; polling runs on the monotonic clock regardless.",
            [],
        ).add_metric([], self.scheduler.clock_jumps)
        counts = list(self.scheduler.start_delays)  # a copy: the loop may add a run meanwhile
        cumulative = [sum(counts[: n + 1]) for n in range(len(counts))]
        bounds = [*(f"{b:g}" for b in START_DELAY_BUCKETS), "+Inf"]
        out.histogram(
            "agent_scheduler_start_delay_seconds",
            "How late job runs (device polls, probes) started against their due time.",
            [],
        ).add_metric(
            [], list(zip(bounds, map(float, cumulative), strict=True)),
            self.scheduler.start_delay_sum,
        )  # fmt: skip
        out.counter(
            "agent_scheduler_skipped_runs",
            "Beats a job skipped because its previous run overran the interval.",
            [],
        ).add_metric([], self.scheduler.skipped_runs)
        return iter(out)
