"""`erozgar-agent check`: the installer's verdict on commissioning day.

Polls every device once, concurrently, through the same collectors and checks as the daemon,
and judges each step PASS / WARN / FAIL with what was seen and, for anything not PASS, a hint
that says what to do. Secrets are never printed: messages come from collectors that leave
them out. Each device kind brings its own steps (agent/commission/, declared in agent/kinds/).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Coroutine
from dataclasses import asdict
from typing import Any, TextIO

from collectors.modbus.transport import GatewayPool
from collectors.snmp.client import SnmpSessions

from ..checks.capacity import endpoint_step
from ..checks.link_quality import LinkQualityCheck, assess, assess_dns, assess_http, run_link
from ..config import Config, LinkSettings
from ..kinds import Pools, configured, kind_of
from ..verdict import DeviceVerdict, Step
from .host import host_steps
from .steps import TRAFFIC_SAMPLE_SECONDS


async def check_link(link: LinkSettings) -> DeviceVerdict:
    """One probe run of a WAN link: a step per target with loss, RTT and jitter seen, one per
    DNS question and one per URL, and whether its capacity test's endpoint answers."""
    verdict = DeviceVerdict(link.name, "link")
    status = LinkQualityCheck(link).update(await run_link(link), 0.0, 0.0)
    for target, settings in zip(status.targets, link.targets, strict=True):
        result, detail, hint = assess(target, settings.tcp_port)
        verdict.checks.append(Step(f"{target.name} {target.address}", result, detail, hint))
    for dns in status.dns:
        others = any(
            d is not dns and d.reading.ok and d.reading.qtype == dns.reading.qtype
            for d in status.dns
        )
        result, detail, hint = assess_dns(dns, others)
        name = f"dns {dns.reading.resolver} {dns.reading.address} {dns.reading.qtype}"
        verdict.checks.append(Step(name, result, detail, hint))
    now = time.time()
    for http in status.http:
        result, detail, hint = assess_http(http, now)
        verdict.checks.append(Step(f"http {http.reading.target}", result, detail, hint))
    if link.capacity_test is not None:
        verdict.checks.append(Step("capacity endpoint", *await endpoint_step(link)))
    return verdict


async def check_host(config: Config) -> DeviceVerdict:
    """This box: clock, disk for the state directory, listen port, remote write."""
    return DeviceVerdict("agent", "host", await host_steps(config))


Progress = Callable[[DeviceVerdict, int, int], None]  # (finished verdict, done, total)


async def run_checks(
    config: Config,
    progress: Progress | None = None,
    sample_seconds: float = TRAFFIC_SAMPLE_SECONDS,
) -> list[DeviceVerdict]:
    """Every device at once, so a site takes about as long as its slowest device."""
    sessions = SnmpSessions()
    gateways = GatewayPool()  # devices on one serial port or gateway share it, as in the daemon
    pools = Pools(sessions, gateways)
    jobs: list[Coroutine[Any, Any, DeviceVerdict]] = [
        kind_of(d).check(d, pools, sample_seconds) for d in configured(config)
    ]
    jobs += [check_link(link) for link in config.links]
    jobs.append(check_host(config))
    done = 0

    async def tracked(job: Coroutine[Any, Any, DeviceVerdict]) -> DeviceVerdict:
        nonlocal done
        verdict = await job
        done += 1
        if progress is not None:
            progress(verdict, done, len(jobs))
        return verdict

    try:
        return list(await asyncio.gather(*(tracked(job) for job in jobs)))
    finally:
        await sessions.close()
        await gateways.close()


def render_json(verdicts: list[DeviceVerdict]) -> str:
    return json.dumps(
        {
            "ok": all(v.status != "FAIL" for v in verdicts),
            "devices": [
                {
                    "name": v.name,
                    "kind": v.kind,
                    "status": v.status,
                    "checks": [asdict(s) for s in v.checks],
                }
                for v in verdicts
            ],
        },
        indent=2,
    )


def render_table(verdicts: list[DeviceVerdict]) -> str:
    rows = [("DEVICE", "KIND", "STEP", "RESULT", "DETAIL")]
    for verdict in verdicts:
        for step in verdict.checks:
            rows.append((verdict.name, verdict.kind, step.name, step.status, step.detail))
            if step.hint:
                rows.append(("", "", "", "", f"hint: {step.hint}"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r[:4], widths, strict=True)) + "  " + r[4]
        for r in rows
    ]
    failed = [v.name for v in verdicts if v.status == "FAIL"]
    warned = [v.name for v in verdicts if v.status == "WARN"]
    if failed:
        lines.append(f"\nFAIL: {len(failed)} of {len(verdicts)} failed: {', '.join(failed)}")
    elif warned:
        lines.append(f"\nPASS with warnings: {', '.join(warned)}")
    else:
        lines.append(f"\nPASS: all {len(verdicts)} checked")
    return "\n".join(lines)


class CheckProgress:
    """Progress on stderr while devices are checked: one redrawn line on a terminal, else a
    line per device as it finishes (readable in a log or CI output)."""

    def __init__(self, stream: TextIO, config: Config) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        count = len(configured(config)) + len(config.links)
        print(
            f"checking {count} devices and links of site {config.site.id} "
            f"(about {TRAFFIC_SAMPLE_SECONDS:g} s for the traffic sample) ...",
            file=stream,
            flush=True,
        )

    def finished(self, verdict: DeviceVerdict, done: int, total: int) -> None:
        if self.tty:
            bar = "#" * (20 * done // total)
            line = f"\r[{bar:<20}] {done}/{total} {verdict.name} {verdict.status}"
            self.stream.write(f"{line:<79}"[:79])
        else:
            self.stream.write(f"[{done}/{total}] {verdict.name}: {verdict.status}\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
