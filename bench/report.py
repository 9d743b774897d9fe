"""Writes RESULTS.md from the JSON files the benchmarks left in one directory.

/opt/erozgar-venv/bin/python bench/report.py DIR > bench/RESULTS.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from benchlib import machine


def _load(directory: Path, name: str) -> Any:
    path = directory / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _verdict(ok: bool) -> str:
    return "meets" if ok else "**misses**"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _pct(share: float) -> str:
    return f"{share * 100:.2f} %"


# Issue 12's hub targets, at this many switches.
HUB_TARGET_DEVICES = 2500


def _mb(mib: float) -> str:
    return f"{mib * 1.048576:.1f} MB"


def _hub_rows(hub: dict[str, Any]) -> list[str]:
    rows = []
    for run in hub["runs"]:
        scrape = run.get("scrape_seconds")
        memory = (
            f"; scrape p50 {_ms(scrape['median'])}, p99 {_ms(scrape['p99'])}; peak RSS "
            f"{_mb(run['agent_peak_rss_mib'])}"
            if scrape and "agent_rss_end_mib" in run
            else ""
        )
        rows.append(
            f"| 3 | hub: {run['devices']} x {hub['ports_per_device']}-port switches every "
            f"{hub['interval_seconds']} s, agent on one core | poll start delay p50 "
            f"{_ms(run['start_delay_p50_seconds'])}, p95 {_ms(run['start_delay_p95_seconds'])}; "
            f"{run['skipped_runs']:.0f} skipped, {run['poll_errors']:.0f} failed; agent CPU "
            f"{_pct(run['agent_cpu_share_of_one_core'])}, responder CPU "
            f"{_pct(run['responder_cpu_share'])}{memory} | | |"
        )
    control = hub["responder_control"]
    best = hub["largest_on_time"]
    rows.append(
        f"| 3 | hub: most switches polled on time (p95 start delay under "
        f"{hub['late_threshold_seconds']:g} s, nothing skipped or failed) | {best} "
        f"(responder control: {control['answers_per_second']:.0f} answers/s at "
        f"{_pct(control['responder_cpu_share'])} of a core) | 500 or more | "
        f"{_verdict(best >= 500)} |"
    )
    at = next((r for r in hub["runs"] if r["devices"] == HUB_TARGET_DEVICES), None)
    if at is not None and "scrape_gzip_seconds" in at:
        both, gz, plain = (at[f"scrape{kind}_seconds"] for kind in ("", "_gzip", "_plain"))
        rows.append(
            f"| 3 | hub: /metrics at {HUB_TARGET_DEVICES} switches ({both['n']} scrapes, whole "
            f"body, {at['body_bytes']['plain'] / 1e6:.0f} MB plain) | p50 {_ms(both['median'])}, "
            f"p99 {_ms(both['p99'])} (gzip p50 {_ms(gz['median'])}, max {_ms(gz['max'])}; plain "
            f"p50 {_ms(plain['median'])}, max {_ms(plain['max'])}) | p99 under 1 s | "
            f"{_verdict(both['p99'] < 1.0)} |"
        )
        peak = at["agent_peak_rss_mib"] * 1.048576
        rows.append(
            f"| 3 | hub: agent peak RSS (VmHWM) at {HUB_TARGET_DEVICES} switches | {peak:.1f} MB "
            f"(at the end {_mb(at['agent_rss_end_mib'])}) | under 300 MB | "
            f"{_verdict(peak < 300)} |"
        )
    return rows


def _exporter_rows(comparison: dict[str, Any]) -> list[str]:
    """Benchmark 1 (bench/snmp_vs_exporter.py): agent/exporter ratios per recording and suite
    (v2c: CPU and packets; v3: CPU, the target of issue 12)."""
    rows = []
    version = comparison["exporter_version"]
    for run in comparison["recordings"]:
        name = run["recording"].rsplit("/", 1)[-1]
        interfaces = run["interfaces"]["agent"]
        agree = "" if not run["disagreements"] else "; the two sides' values DIFFER"
        if run["interfaces"]["agent"] != run["interfaces"]["exporter"]:
            agree = "; the two sides saw different interfaces"
        suite = run.get("suite", "v2c")
        over = "" if suite == "v2c" else f" over SNMP{suite}"
        what = (
            f"same work as snmp_exporter {version} if_mib{over}, {name} ({interfaces} interfaces)"
        )
        exporter, agent, ratios = run["exporter"], run["agent"], run["ratios"]
        rows.append(
            f"| 1 | {what}: agent CPU-s per poll / exporter per scrape | {ratios['cpu']:.2f} "
            f"({agent['cpu_seconds']['median']:.4f} / {exporter['cpu_seconds']['median']:.4f} "
            f"s, medians of {run['rounds']} A/B rounds{agree}) | 1.0 or less | "
            f"{_verdict(ratios['cpu'] <= 1.0)} |"
        )
        if suite == "v2c":
            rows.append(
                f"| 1 | {what}: SNMP packets per poll / per scrape | {ratios['packets']:.2f} "
                f"({agent['packets']['median']:.0f} / {exporter['packets']['median']:.0f}"
                f"{agree}) | 0.5 or less | {_verdict(ratios['packets'] <= 0.5)} |"
            )
    return rows


def _process_rows(process: dict[str, Any]) -> list[str]:
    """Benchmark 1, whole process (bench/snmp_process.py): per suite."""
    rows = []
    for run in process["suites"]:
        name = run["recording"].rsplit("/", 1)[-1]
        stat = run["stat"]
        mine = stat["agent_cpu_seconds_per_poll"]["median"]
        theirs = stat["exporter_cpu_seconds_per_scrape"]["median"]
        target = run["target"]
        rows.append(
            f"| 1 | whole process, {name} over {run['suite']}: `erozgar-agent run` CPU-s per poll "
            f"/ snmp_exporter {process['exporter_version']} per scrape (utime+stime, idle "
            f"subtracted) | {stat['ratio']:.2f} ({mine:.4f} / {theirs:.4f} s, medians of "
            f"{run['rounds']} A/B rounds of {run['polls']} polls) | {target:.1f} or less | "
            f"{_verdict(stat['ratio'] <= target)} |"
        )
    return rows


def _centre_rows(centre: dict[str, Any]) -> list[str]:
    """Benchmark 2 (and 6, start-up, when measured) of one centre run."""
    suite = centre.get("routers_snmp_v3")
    over = f", routers over SNMPv3 authPriv {suite}" if suite else ""
    what = f"reference centre{over}"
    fp = centre["footprint"]
    per = fp["cpu_share_per_window"]
    spread = (
        f" (per minute: median {_pct(per['median'])}, {_pct(per['min'])}-{_pct(per['max'])})"
        if per
        else ""
    )
    rss_mb = fp["peak_rss_mib"] * 1.048576
    rows = [
        f"| 2 | {what}, agent CPU over {fp['minutes']:.1f} min | "
        f"{_pct(fp['cpu_share_of_one_core'])} of one core{spread} | under 2 % | "
        f"{_verdict(fp['cpu_share_of_one_core'] < 0.02)} |",
        f"| 2 | {what}, agent peak RSS ({fp['series']} series) | "
        f"{rss_mb:.1f} MB | under 60 MB | {_verdict(rss_mb < 60)} |",
    ]
    st = centre["startup"]["seconds"]
    if st:
        rows.append(
            f"| 6 | start-up: exec to first complete /metrics ({st['n']} starts{over}) "
            f"| median {st['median']:.2f} s, {st['min']:.2f}-{st['max']:.2f} s | (no target) | |"
        )
    return rows


def render(directory: Path) -> str:
    facts = machine()
    lines = [
        "# Benchmark results",
        "",
        "Written by `bash bench/run_all.sh`; each script's docstring gives its method. The agent",
        "always runs as its own `erozgar-agent run` process and the simulators in another, so its",
        "CPU (utime+stime from /proc/PID/stat) and memory (VmHWM from /proc/PID/status) are its",
        "own (benchmark 1 alone times the agent's SNMP poll in its own process; see its section).",
        "Spreads: median, interquartile range (q1-q3), min-max.",
        "",
        f"Machine: {facts['nproc']} CPUs (`nproc`), {facts['cpu']}, Python {facts['python']},",
        f"Linux {facts['kernel']}.",
        "",
        "| # | figure | measured | target | |",
        "|---|---|---|---|---|",
    ]
    comparison = _load(directory, "snmp_vs_exporter")
    if comparison:
        lines += _exporter_rows(comparison)
    process = _load(directory, "snmp_process")
    if process:
        lines += _process_rows(process)
    centre = _load(directory, "centre")
    centre_v3 = _load(directory, "centre_v3")
    scrape = _load(directory, "scrape")
    idle = _load(directory, "accuracy-idle")
    loaded = _load(directory, "accuracy-load")
    for run in (centre, centre_v3):
        if run:
            lines += _centre_rows(run)
    if scrape:
        lat = scrape["latency_seconds"]
        slow_delay = scrape["slow_router_answer_delay_seconds"]
        lines.append(
            f"| 4 | /metrics latency at {scrape['series']} series ({lat['n']} scrapes) | p50 "
            f"{_ms(lat['median'])}, p99 {_ms(lat['p99'])} (IQR {_ms(lat['q1'])}-{_ms(lat['q3'])},"
            f" max {_ms(lat['max'])}) | p99 under 20 ms | {_verdict(lat['p99'] < 0.02)} |"
        )
        lines.append(
            f"| 4 | the same scrapes while a router answers each request "
            f"{scrape['slow_router_answer_delay_seconds']:g} s late (its poll took "
            f"{scrape['slow_router_poll_seconds'] or 0:.1f} s) | max {_ms(lat['max'])} | not "
            f"delayed by the poll | {_verdict(lat['max'] < slow_delay)} |"
        )
    hub = _load(directory, "hub")
    if hub:
        lines += _hub_rows(hub)
    for name, run in (("idle box", idle), ("2 busy loops beside", loaded)):
        if run and run["abs_error"]:
            err = run["abs_error"]
            lines.append(
                f"| 5 | throughput error, {name} ({run['polls_compared']} polls, 32-bit wraps at "
                f"950 Mb/s) | median {_pct(err['median'])}, p95 {_pct(err['p95'])}, max "
                f"{_pct(err['max'])} | within 1 % | {_verdict(err['max'] <= 0.01)} |"
            )
            restart = run["first_poll_after_restart_errors"]
            if restart:
                worst = max(abs(e) for e in restart)
                lines.append(
                    f"| 5 | first poll after the device restart, {name} | max {_pct(worst)} | "
                    f"within 1 % | {_verdict(worst <= 0.01)} |"
                )
    notes = directory / "notes.md"  # where figures came from when a part was run again
    if notes.exists():
        lines += ["", "## Notes on this run", "", notes.read_text().rstrip()]
    exporter = directory / "snmp_vs_exporter.txt"
    if exporter.exists():
        lines += ["", "## 1. Same work as prometheus-snmp-exporter", "", "```",
                  exporter.read_text().rstrip(), "```"]  # fmt: skip
    whole = directory / "snmp_process.txt"
    if whole.exists():
        lines += ["", "## 1. Whole process against prometheus-snmp-exporter", "", "```",
                  whole.read_text().rstrip(), "```"]  # fmt: skip
    lines += ["", "## Raw figures", ""]
    for path in sorted(directory.glob("*.json")):
        lines += [f"`{path.name}`:", "", "```json", path.read_text().rstrip(), "```", ""]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render(Path(sys.argv[1])))
