"""The central side at fleet scale: N simulated centres through real vmagent into one
VictoriaMetrics single node, measured (issue 13).

    /opt/erozgar-venv/bin/python bench/fleet_scale.py --centres 1000 [--settle 240]
        [--measure 300] [--repeats 20] [--label main] [--json OUT] [--results bench/RESULTS.md]

Method:
1. Sample. The reference centre (bench/simulate.py `centre`: 2 routers of 8 ports, 6 switches of
   48 + 2 ports, 3 APC UPS, 2 probed ISP links; bench/centre.py's config) is polled by a real
   `erozgar-agent run`. Its /metrics is read twice, `--capture-gap` seconds apart, and the
   shipped deploy/vmagent/scrape.yml (its jobs and relabelling, only the target and shorter
   intervals changed) is run by real vmagent into a scratch VictoriaMetrics: the series that
   store holds per job are what a centre ships. So the sample follows the agent and the shipped
   scrape config, whatever they are at this commit.
2. Fleet. One server process answers every centre's scrape of each job with the captured
   series of that job: counters advance at the rate seen between the two reads, `*_timestamp_
   seconds` gauges follow the clock, other fractional gauges wobble by up to 5 %, integral
   gauges stay; the agent's own `site` label is each centre's. Real vmagent scrapes N targets
   per job with the shipped jobs and intervals (`site` and `region` as target labels, where each
   centre's vmagent sets them with -remoteWrite.label; `instance` as at a centre), and remote-
   writes with the shipped erozgar-vmagent.service flags into the shipped erozgar-victoriametrics
   .service (two vmagent flags added: -promscrape.streamParse and -promscrape.noStaleMarkers,
   as one vmagent holding every centre's last scrape took 15 GB at 1,000 centres; so
   scrape_series_added is not sent). One vmagent stands for N: its requests are bigger and
   fewer than N sites' would be (VictoriaMetrics parses the same rows either way).
3. Measure, once no new series appeared for 30 s, vmagent's buffer is empty (new series
   register slowly, so the first minutes back up) and `--settle` passed. Ingestion alone, over
   `--measure` seconds: VictoriaMetrics' utime+stime (/proc/PID/stat) as cores, its RSS (VmRSS,
   VmHWM), active series (series created: a fresh store without churn), rows ingested and
   rows vmagent sent per second. Then vmalert starts with the shipped rules and an inventory
   of the N sites (erozgar-vmalert.service, every 10 s), and after 30 s, over `--measure`
   seconds: vmalert_iteration_duration_seconds per group (mean from _sum/_count; its 0.99
   quantile), rule errors, and VictoriaMetrics' CPU and RSS with the rules' queries added.
   Disk, at the end: after a flush and a forced merge, bytes per stored row of the data parts
   (vm_data_size_bytes / vm_rows) times a day of the ingest rate, plus the index (its per-day
   entries are made again each day). Minutes of data make small blocks per series: an upper
   bound on what a day's parts cost.
4. Queries, after that, with ingestion and vmalert going on: every target of the fleet and centre
   dashboards as Grafana sends it (instant panels to /api/v1/query at now, the others to
   /api/v1/query_range over the dashboard's default range, the step the data source's
   timeInterval; $__range the default range, $__rate_interval 4 steps, $site a centre), plus the
   centre dashboard's site variable (/api/v1/label/site/values), each `--repeats` times in turn,
   with nocache=1 (no result cache). The store holds only this run's minutes, so queries over
   24 h read the minutes there are.
The machine's 2 cores are shared with other jobs: figures carry that noise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import yaml
from benchlib import (
    ROOT,
    agent,
    cpu_seconds,
    http_get,
    memory_kib,
    simulator,
    spread,
    timed_get,
    wait_complete,
    write_result,
)
from centre import config as centre_config

sys.path.insert(0, str(ROOT))
from tests.integration.deploy_stack import (
    DEPLOY,
    RULES,
    VictoriaMetrics,
    free_tcp_port,
    render_sites,
    running,
    scrape_config,
    unit_command,
    with_flags,
)

SITE = "\x00SITE\x00"  # where each centre's id goes in the served text
REGIONS = {
    "ISB": "islamabad",
    "LHE": "punjab",
    "KHI": "sindh",
    "PEW": "kp",
    "QTA": "balochistan",
    "GIL": "gb",
    "MZD": "ajk",
    "MUX": "south-punjab",
}
DASHBOARDS = ("erozgar-fleet", "erozgar-centre")
MIN_AVAILABLE_GIB = 4.0
RULES_WARMUP_S = 30  # vmalert's first evaluations, before its window


# 1. The sample ------------------------------------------------------------------------------


def parse_exposition(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], tuple[float, str]]:
    """(name, labels without `site`) -> (value, family type) of every sample."""
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = frozenset((k, v) for k, v in sample.labels.items() if k != "site")
            out[(sample.name, labels)] = (sample.value, family.type)
    return out


def shipped_jobs() -> list[dict[str, Any]]:
    """The jobs of deploy/vmagent/scrape.yml that scrape the agent (static targets)."""
    config = yaml.safe_load((DEPLOY / "vmagent" / "scrape.yml").read_text())
    return [job for job in config["scrape_configs"] if job.get("static_configs")]


def capture(workdir: Path, settle: float, gap: float) -> dict[str, Any]:
    """The reference centre's series per shipped job, with values and per-second rates."""
    with simulator(workdir, ["centre"]) as (_, devices):
        n_devices = len(devices["snmp"]) + len(devices["modbus"])
        with agent(workdir, centre_config(workdir, devices)) as (_, port, _):
            wait_complete(port, n_devices, len(devices["links"]))
            time.sleep(settle)  # the 30 s switches' second poll gives their rates
            first, t1 = http_get(f"http://127.0.0.1:{port}/metrics").decode(), time.time()
            shipped = shipped_series(workdir, port, gap)
            second, t2 = http_get(f"http://127.0.0.1:{port}/metrics").decode(), time.time()
    before, after = parse_exposition(first), parse_exposition(second)
    exposed = len(after)
    jobs: dict[str, list[dict[str, Any]]] = {}
    for job, keys in shipped.items():
        rows = []
        for key in sorted(keys):
            if key not in after:  # gone between the reads
                continue
            value, kind = after[key]
            counter = kind in ("counter", "histogram", "summary") and key in before
            rate = max(0.0, (value - before[key][0]) / (t2 - t1)) if counter else 0.0
            rows.append(
                {
                    "name": key[0],
                    "labels": dict(key[1]),
                    "value": value,
                    "rate": rate,
                    "counter": counter,
                }
            )
        jobs[job] = rows
    return {"captured_at": t2, "exposed": exposed, "jobs": jobs}


def shipped_series(workdir: Path, agent_port: int, seconds: float) -> dict[str, set[Any]]:
    """What the shipped scrape config ships of the agent at `agent_port`, per job: real vmagent
    into a scratch VictoriaMetrics for `seconds`."""
    root = workdir / "capture"
    root.mkdir()
    vm = VictoriaMetrics(root)
    vm.start()
    try:
        text = scrape_config(2, 2, f"127.0.0.1:{agent_port}", {})
        argv = vmagent_argv(root, f"{vm.url}/api/v1/write", text, free_tcp_port())
        with running(argv, root / "vmagent.log", f"http://127.0.0.1:{flag_port(argv)}/health"):
            time.sleep(max(seconds, 8))
        time.sleep(3)  # the last write becomes searchable
        shipped: dict[str, set[Any]] = {}
        for job in shipped_jobs():
            name = job["job_name"]
            series = vm.series(f'{{job="{name}",__name__=~"erozgar_.+"}}')
            shipped[name] = series
        return shipped
    finally:
        vm.stop()


# 2. The fleet -------------------------------------------------------------------------------


def vmagent_argv(root: Path, url: str, scrape_yml: str, port: int) -> list[str]:
    """The shipped erozgar-vmagent.service pointed at `url`, without its -remoteWrite.label
    flags (the fleet's targets carry site and region instead)."""
    credentials = root / "credentials"
    credentials.mkdir(exist_ok=True)
    (credentials / "remote-write-password").write_text("bench\n")
    (root / "scrape.yml").write_text(scrape_yml)
    env = {"EROZGAR_SITE": "fleet", "EROZGAR_REGION": "fleet", "EROZGAR_REMOTE_WRITE_URL": url}
    argv = unit_command(
        DEPLOY / "systemd" / "erozgar-vmagent.service", env, {"d": str(credentials), "S": str(root)}
    )
    argv = [a for a in argv if not a.startswith("-remoteWrite.label=")]
    # One vmagent holding N centres' last scrapes (for stale markers) and whole bodies took
    # 15 GB at 1,000 centres of main's set; a centre's vmagent holds one. Stream parsing and no
    # stale markers keep it small and change nothing that reaches the store while sites stay.
    return with_flags(
        argv,
        promscrape__config=str(root / "scrape.yml"),
        httpListenAddr=f"127.0.0.1:{port}",
        promscrape__streamParse="true",
        promscrape__noStaleMarkers="true",
    )


def flag_port(argv: list[str]) -> int:
    (listen,) = [a for a in argv if a.startswith("-httpListenAddr=")]
    return int(listen.rsplit(":", 1)[1])


def sites(n: int) -> list[tuple[str, str]]:
    """(site id, region) of `n` centres, spread over the regions."""
    codes = list(REGIONS)
    return [
        (f"{codes[i % len(codes)]}-{i // len(codes) + 1:04d}", REGIONS[codes[i % len(codes)]])
        for i in range(n)
    ]


def fleet_scrape_config(
    port: int, centres: list[tuple[str, str]], jobs: set[str], interval_cap: float | None
) -> str:
    """The shipped scrape.yml, each job's targets replaced by every centre on the server, and
    its interval capped at `interval_cap` seconds if given."""
    config = yaml.safe_load((DEPLOY / "vmagent" / "scrape.yml").read_text())
    kept = []
    for job in config["scrape_configs"]:
        if job["job_name"] not in jobs:
            continue
        job["scrape_interval"] = f"{job_interval(job, interval_cap):g}s"
        job["metrics_path"] = f"/{job['job_name']}"
        job["static_configs"] = [
            {
                "targets": [f"127.0.0.1:{port}"],
                "labels": {"site": site, "region": region, "instance": "127.0.0.1:9877"},
            }
            for site, region in centres
        ]
        job["relabel_configs"] = [{"source_labels": ["site"], "target_label": "__param_site"}]
        kept.append(job)
    config["scrape_configs"] = kept
    return yaml.safe_dump(config, sort_keys=False)


def render_value(row: dict[str, Any], index: int, elapsed: float, now: float) -> str:
    value = row["value"]
    if row["counter"]:
        value += row["rate"] * elapsed
    elif row["name"].endswith("_timestamp_seconds"):
        value += elapsed
    elif not float(value).is_integer():
        value *= 1 + 0.05 * math.sin(now / 97 + index)
    return repr(float(value))


def render_line(row: dict[str, Any]) -> str:
    pairs = ",".join(f'{k}="{json.dumps(v)[1:-1]}"' for k, v in sorted(row["labels"].items()))
    return f"{row['name']}{{{pairs}}}" if pairs else row["name"]


class Served:
    """Each job's text, re-rendered at most once a second, split where the site id goes."""

    def __init__(self, sample: dict[str, Any]) -> None:
        self.sample = sample
        self.prefixes = {
            job: [render_line(row) for row in rows] for job, rows in sample["jobs"].items()
        }
        self.cache: dict[str, tuple[int, list[bytes]]] = {}

    def body(self, job: str, site: str) -> bytes | None:
        if job not in self.prefixes:
            return None
        now = time.time()
        second = int(now)
        cached = self.cache.get(job)
        if cached is None or cached[0] != second:
            elapsed = now - self.sample["captured_at"]
            rows = self.sample["jobs"][job]
            lines = []
            for i, (prefix, row) in enumerate(zip(self.prefixes[job], rows, strict=True)):
                if row["name"] == "erozgar_agent_info":  # the agent's own site label
                    prefix = prefix.replace("{", '{site="' + SITE + '",', 1)
                lines.append(f"{prefix} {render_value(row, i, elapsed, now)}\n")
            cached = (second, "".join(lines).encode().split(SITE.encode()))
            self.cache[job] = cached
        return site.encode().join(cached[1])


async def serve(table: Path, port: int) -> None:
    served = Served(json.loads(table.read_text()))

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while request := await reader.readuntil(b"\r\n\r\n"):
                target = request.split(b" ", 2)[1].decode()
                url = urllib.parse.urlsplit(target)
                site = urllib.parse.parse_qs(url.query).get("site", [""])[0]
                path = url.path.lstrip("/")
                body = b"ok" if path == "health" else served.body(path, site)
                status = b"200 OK" if body is not None else b"404 Not Found"
                body = body or b""
                writer.write(
                    b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain; "
                    b"version=0.0.4\r\nContent-Length: "
                    + str(len(body)).encode()
                    + b"\r\n\r\n"
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(client, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


@contextmanager
def fleet_server(workdir: Path, sample: dict[str, Any]) -> Iterator[int]:
    table = workdir / "sample.json"
    table.write_text(json.dumps(sample))
    port = free_tcp_port()
    argv = [sys.executable, __file__, "serve", "--table", str(table), "--port", str(port)]
    with running(argv, workdir / "server.log", f"http://127.0.0.1:{port}/health"):
        yield port


# 3. Measuring -------------------------------------------------------------------------------


def own_metrics(url: str) -> dict[str, float]:
    """A process's /metrics as {'name{labels}': value}."""
    out = {}
    for line in http_get(f"{url}/metrics", timeout=30).decode().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def metric(metrics: dict[str, float], name: str, **labels: str) -> float:
    """Sum of `name` over the label sets that include `labels`."""
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    return sum(
        value
        for key, value in metrics.items()
        if (key == name or key.startswith(name + "{")) and all(w in key for w in wanted)
    )


def memory_available_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 2**20
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def wait_settled(vm_url: str, vmagent_url: str, settle: float, deadline_s: float = 1800) -> float:
    """Seconds until no new series appeared for 30 s, vmagent has nothing left to send (the
    first minutes' new series are slow to register, and vmagent buffers meanwhile) and `settle`
    passed; stops the run while the machine (shared with other jobs) still has
    MIN_AVAILABLE_GIB free."""
    started = time.monotonic()
    last_new, last_change = -1.0, time.monotonic()
    while time.monotonic() - started < deadline_s:
        if (free := memory_available_gib()) < MIN_AVAILABLE_GIB:
            raise RuntimeError(f"only {free:.1f} GiB of memory left: fleet too big here")
        new = metric(own_metrics(vm_url), "vm_new_timeseries_created_total")
        if new != last_new:
            last_new, last_change = new, time.monotonic()
        quiet = time.monotonic() - last_change
        pending = metric(own_metrics(vmagent_url), "vmagent_remotewrite_pending_data_bytes")
        if new > 0 and quiet >= 30 and not pending and time.monotonic() - started >= settle:
            return time.monotonic() - started
        time.sleep(5)
    raise RuntimeError(f"new series still appearing after {deadline_s:g} s")


def vmalert_groups(metrics: dict[str, float]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        match = re.match(r"vmalert_iteration_duration_seconds(_sum|_count)?\{(.*)\}$", key)
        if not match:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2)))
        group = out.setdefault(labels["group"], {})
        if match.group(1):
            group[match.group(1)[1:]] = value
        elif labels.get("quantile") == "0.99":
            group["p99"] = value
    return out


def ingestion(vm: VictoriaMetrics, pid: int, seconds: float) -> dict[str, Any]:
    """VictoriaMetrics over `seconds` of ingestion alone (no rules, no queries)."""
    vm0, cpu0, t0 = own_metrics(vm.url), cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    vm1, cpu1, t1 = own_metrics(vm.url), cpu_seconds(pid), time.monotonic()
    wall = t1 - t0
    memory = memory_kib(pid)
    rows, new = "vm_rows_inserted_total", "vm_new_timeseries_created_total"
    return {
        "window_s": wall,
        "vm_cpu_cores": (cpu1 - cpu0) / wall,
        "vm_rss_mib": memory["VmRSS"] / 1024,
        "vm_hwm_mib": memory["VmHWM"] / 1024,
        # A fresh store without churn: every series made is active. The hour's cache
        # (storage/hour_metric_ids) starts empty again at each full hour.
        "active_series": max(
            metric(vm1, "vm_cache_entries", type="storage/hour_metric_ids"), metric(vm1, new)
        ),
        "samples_per_s": (metric(vm1, rows) - metric(vm0, rows)) / wall,
        "new_series_in_window": metric(vm1, new) - metric(vm0, new),
    }


def rules(
    vm: VictoriaMetrics, pid: int, url: str, vmalert_pid: int, seconds: float
) -> dict[str, Any]:
    """vmalert's evaluations over `seconds`, and the CPU they add to VictoriaMetrics."""
    al0, cpu0, acpu0, t0 = (
        own_metrics(url),
        cpu_seconds(pid),
        cpu_seconds(vmalert_pid),
        time.monotonic(),
    )
    time.sleep(seconds)
    al1, cpu1, acpu1, t1 = (
        own_metrics(url),
        cpu_seconds(pid),
        cpu_seconds(vmalert_pid),
        time.monotonic(),
    )
    wall = t1 - t0
    groups = {}
    g0, g1 = vmalert_groups(al0), vmalert_groups(al1)
    for name, after in g1.items():
        before = g0.get(name, {})
        count = after.get("count", 0) - before.get("count", 0)
        total = after.get("sum", 0) - before.get("sum", 0)
        groups[name] = {
            "iterations": count,
            "mean_s": total / count if count else None,
            "p99_s": after.get("p99"),
        }
    errors = sum(
        metric(al1, name)
        for name in ("vmalert_alerting_rules_errors_total", "vmalert_recording_rules_errors_total")
    )
    return {
        "rules_window_s": wall,
        "vm_cpu_cores_with_rules": (cpu1 - cpu0) / wall,
        "vm_rss_mib_with_rules": memory_kib(pid)["VmRSS"] / 1024,
        "vmalert_cpu_cores": (acpu1 - acpu0) / wall,
        "vmalert_groups": groups,
        "vmalert_rule_errors": errors,
    }


def disk(vm: VictoriaMetrics, active: float, samples_s: float) -> dict[str, float]:
    """Bytes per stored sample once the parts are merged as they would be over a day, and the
    index per active series; a day is the ingest rate's samples plus one index per series."""
    http_get(f"{vm.url}/internal/force_flush", timeout=60)
    http_get(f"{vm.url}/internal/force_merge", timeout=600)
    deadline = time.monotonic() + 600
    while metric(own_metrics(vm.url), "vm_active_merges") and time.monotonic() < deadline:
        time.sleep(2)
    stored = own_metrics(vm.url)
    parts = ("storage/small", "storage/big")
    data_bytes = sum(metric(stored, "vm_data_size_bytes", type=t) for t in parts)
    per_row = data_bytes / sum(metric(stored, "vm_rows", type=t) for t in parts)
    index_bytes = metric(stored, "vm_data_size_bytes", type="indexdb")
    return {
        "disk_bytes_per_row": per_row,
        "index_bytes_per_series": index_bytes / active,
        "disk_bytes_per_day": per_row * samples_s * 86400 + index_bytes,
    }


# 4. Dashboards ------------------------------------------------------------------------------


def time_interval() -> int:
    """The data source's timeInterval (seconds): Grafana's least step; its $__rate_interval is
    then max(step + timeInterval, 4 x timeInterval) = 4 x timeInterval at the default ranges."""
    path = DEPLOY / "grafana" / "provisioning" / "datasources" / "erozgar.yml"
    (source,) = yaml.safe_load(path.read_text())["datasources"]
    return int(parse_seconds(source["jsonData"]["timeInterval"]))


def dashboard_queries(name: str, site: str) -> tuple[int, list[dict[str, Any]]]:
    """The default range (seconds) and every target of dashboard `name` as Grafana sends it."""
    board = json.loads((DEPLOY / "grafana" / "dashboards" / f"{name}.json").read_text())
    hours = re.fullmatch(r"now-(\d+)h", board["time"]["from"])
    assert hours and board["time"]["to"] == "now", board["time"]
    range_s = int(hours.group(1)) * 3600
    queries = []
    for variable in board.get("templating", {}).get("list", []):
        query = variable["query"]["query"] if isinstance(variable["query"], dict) else ""
        match = re.fullmatch(r"label_values\((.+), (\w+)\)", query)
        if match:
            queries.append(
                {
                    "panel": f"variable {variable['name']}",
                    "expr": query,
                    "label": match.group(2),
                    "match": match.group(1),
                }
            )

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            walk(panel.get("panels", []))
            for target in panel.get("targets", []):
                expr = (
                    target["expr"]
                    .replace("$site", site)
                    .replace("$__range", f"{range_s}s")
                    .replace("$__rate_interval", f"{4 * time_interval()}s")
                )
                queries.append(
                    {"panel": panel["title"], "expr": expr, "instant": bool(target.get("instant"))}
                )

    walk(board["panels"])
    return range_s, queries


def shipped_names(sample: dict[str, Any]) -> set[str]:
    """Metric names a centre ships, histogram buckets under their family name too."""
    names = {row["name"] for rows in sample["jobs"].values() for row in rows}
    return names | {re.sub(r"_(bucket|count|sum)$", "", name) for name in names}


def expects_data(expr: str, shipped: set[str]) -> bool:
    """Whether a query reads only families a centre ships (recording rules come from them)."""
    names = re.findall(r"\b(erozgar_[a-z0-9_]+)", expr)
    return all(name in shipped or name == "erozgar_site_info" for name in names)


def run_queries(
    vm_url: str, site: str, repeats: int, shipped: set[str], rules_age_s: float
) -> dict[str, Any]:
    """Every dashboard query, timed. A range query's points sit on multiples of the step, so a
    series vmalert has recorded for less than one step may have no point yet: such a query is
    timed but not expected to have data."""
    out: dict[str, Any] = {}
    step = time_interval()
    for board in DASHBOARDS:
        range_s, queries = dashboard_queries(board, site)
        for q in queries:
            q["seconds"], q["results"], q["errors"] = [], 0, []
        for _ in range(repeats):
            for q in queries:
                now = time.time()
                if "label" in q:
                    path = f"/api/v1/label/{q['label']}/values"
                    params = {"match[]": q["match"], "start": now - range_s, "end": now}
                elif q["instant"]:
                    path, params = "/api/v1/query", {"query": q["expr"], "time": now}
                else:
                    path = "/api/v1/query_range"
                    params = {
                        "query": q["expr"],
                        "start": math.floor((now - range_s) / step) * step,
                        "end": now,
                        "step": step,
                    }
                params["nocache"] = 1
                try:
                    took, body = timed_get(f"{vm_url}{path}?{urllib.parse.urlencode(params)}", 60)
                except OSError as exc:
                    q["errors"].append(str(exc))
                    continue
                answer = json.loads(body)
                if answer.get("status") != "success":
                    q["errors"].append(answer.get("error", "no status"))
                q["seconds"].append(took)
                q["results"] = len(
                    answer.get("data", []) if "label" in q else answer["data"]["result"]
                )
        times = [t for q in queries for t in q["seconds"]]
        out[board] = {
            "range_s": range_s,
            "all": spread(times),
            "queries": [
                {
                    "panel": q["panel"],
                    "expr": q["expr"],
                    "results": q["results"],
                    "errors": sorted(set(q["errors"])),
                    "expects_data": expects_data(q.get("match", q["expr"]), shipped)
                    and not (
                        "label" not in q
                        and not q["instant"]
                        and "erozgar:" in q["expr"]
                        and rules_age_s < step
                    ),
                    "p50_s": spread(q["seconds"])["median"] if q["seconds"] else None,
                    "p99_s": spread(q["seconds"])["p99"] if q["seconds"] else None,
                }
                for q in queries
            ],
        }
    return out


# The run ------------------------------------------------------------------------------------


def rule_files(target: Path) -> None:
    """Copy the shipped rules to `target` without the groups that set their own interval (the
    availability rules: hourly and slower). vmalert would first run such a group up to an
    interval after its start, long after the window: slow_groups times them instead."""
    for path in RULES.glob("*.yml"):
        doc = yaml.safe_load(path.read_text())
        doc["groups"] = [group for group in doc["groups"] if "interval" not in group]
        if doc["groups"]:
            (target / path.name).write_text(yaml.safe_dump(doc, sort_keys=False))


def slow_groups(vm_url: str) -> dict[str, dict[str, Any]]:
    """One evaluation of each slow group, as vmalert makes it: each rule an instant query at
    now, timed (nocache), with the series it gives."""
    out: dict[str, dict[str, Any]] = {}
    for path in RULES.glob("*.yml"):
        groups = yaml.safe_load(path.read_text())["groups"]
        out.update(_timed(vm_url, group) for group in groups if "interval" in group)
    return out


def _timed(vm_url: str, group: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    took, series, errors = 0.0, 0, []
    for rule in group["rules"]:
        params = {"query": rule["expr"], "time": time.time(), "nocache": 1}
        try:
            seconds, body = timed_get(
                f"{vm_url}/api/v1/query?{urllib.parse.urlencode(params)}", 120
            )
        except OSError as exc:
            errors.append(str(exc))
            continue
        answer = json.loads(body)
        if answer.get("status") != "success":
            errors.append(answer.get("error", "no status"))
            continue
        took += seconds
        series += len(answer["data"]["result"])
    return group["name"], {
        "interval": group["interval"], "seconds": took, "series": series, "errors": errors,
    }  # fmt: skip


def vmalert_argv(
    workdir: Path, vm_url: str, notifier: str, port: int, centres: list[tuple[str, str]]
) -> list[str]:
    """The shipped erozgar-vmalert.service with the shipped rules and the centres' inventory."""
    rules = workdir / "rules"
    rules.mkdir()
    rule_files(rules)
    rows = [
        (site, f"Centre {site}", region, f"admin.{site.lower()}@example.pk")
        for site, region in centres
    ]
    render_sites(rows, rules / "erozgar-sites.yml")
    env = {
        "EROZGAR_SELECT_URL": vm_url,
        "EROZGAR_INSERT_URL": vm_url,
        "EROZGAR_ALERTMANAGER_URL": notifier,
        "EROZGAR_GRAFANA_URL": "http://127.0.0.1:3000",
    }
    argv = unit_command(DEPLOY / "systemd" / "erozgar-vmalert.service", env, {})
    return with_flags(argv, rule=f"{rules}/*.yml", httpListenAddr=f"127.0.0.1:{port}")


def fleet(workdir: Path, sample: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    centres = sites(args.centres)
    seconds = args.measure
    vm = VictoriaMetrics(workdir)
    vm.start()
    try:
        with ExitStack() as stack:
            port = stack.enter_context(fleet_server(workdir, sample))
            text = fleet_scrape_config(port, centres, set(sample["jobs"]), args.interval_cap)
            agent_port, alert_port = free_tcp_port(), free_tcp_port()
            argv = vmagent_argv(workdir, f"{vm.url}/api/v1/write", text, agent_port)
            vmagent = stack.enter_context(
                running(argv, workdir / "vmagent.log", f"http://127.0.0.1:{agent_port}/health")
            )
            settled = wait_settled(vm.url, f"http://127.0.0.1:{agent_port}", args.settle)
            vm_pid = vm._process.pid  # type: ignore[union-attr]
            vmagent_cpu0 = cpu_seconds(vmagent.pid)
            shipper0 = own_metrics(f"http://127.0.0.1:{agent_port}")
            result = ingestion(vm, vm_pid, seconds)
            shipper1 = own_metrics(f"http://127.0.0.1:{agent_port}")
            pushed = "vmagent_remotewrite_rows_pushed_after_relabel_total"
            result["offered_samples_per_s"] = (
                metric(shipper1, pushed) - metric(shipper0, pushed)
            ) / result["window_s"]
            result["vmagent_pending_bytes_at_end"] = metric(
                shipper1, "vmagent_remotewrite_pending_data_bytes"
            )
            result["vmagent_cpu_cores"] = (cpu_seconds(vmagent.pid) - vmagent_cpu0) / seconds
            result["vmagent_rss_mib"] = memory_kib(vmagent.pid)["VmRSS"] / 1024
            result["settled_after_s"] = settled
            # Notifications go nowhere: a port nobody listens on (vmalert logs the failures).
            argv = vmalert_argv(
                workdir, vm.url, f"http://127.0.0.1:{free_tcp_port()}", alert_port, centres
            )
            vmalert_url = f"http://127.0.0.1:{alert_port}"
            vmalert = stack.enter_context(
                running(argv, workdir / "vmalert.log", f"{vmalert_url}/health")
            )
            rules_started = time.monotonic()
            time.sleep(RULES_WARMUP_S)
            result.update(rules(vm, vm_pid, vmalert_url, vmalert.pid, seconds))
            result["slow_groups"] = slow_groups(vm.url)
            result["query_step_s"] = time_interval()
            result["queries"] = run_queries(
                vm.url,
                centres[0][0],
                args.repeats,
                shipped_names(sample),
                time.monotonic() - rules_started,
            )
            result.update(disk(vm, result["active_series"], result["samples_per_s"]))
            targets = json.loads(http_get(f"http://127.0.0.1:{agent_port}/api/v1/targets"))
            result["targets_up"] = sum(
                t["health"] == "up" for t in targets["data"]["activeTargets"]
            )
            result["targets"] = len(targets["data"]["activeTargets"])
    finally:
        vm.stop()
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        workdir = Path(tmp)
        sample = capture(workdir, args.capture_settle, args.capture_gap)
        per_job = {job: len(rows) for job, rows in sample["jobs"].items()}
        fleet_dir = workdir / "fleet"
        fleet_dir.mkdir()
        result = fleet(fleet_dir, sample, args)
    interval = {j["job_name"]: job_interval(j, args.interval_cap) for j in shipped_jobs()}
    result.update(
        label=args.label,
        centres=args.centres,
        commit=subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip(),
        date=time.strftime("%Y-%m-%d"),
        centre_exposed_series=sample["exposed"],
        centre_shipped_series=per_job,
        centre_samples_per_s=sum(n / interval[job] for job, n in per_job.items()),
        interval_cap_s=args.interval_cap,
    )
    return result


def job_interval(job: dict[str, Any], cap: float | None) -> float:
    """A shipped job's scrape interval in seconds (vmagent's default 1m), at most `cap`."""
    seconds = parse_seconds(job.get("scrape_interval", "1m"))
    return min(seconds, cap) if cap else seconds


def parse_seconds(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(s|m)", text)
    assert match, text
    return float(match.group(1)) * (60 if match.group(2) == "m" else 1)


# RESULTS.md ---------------------------------------------------------------------------------


def report(r: dict[str, Any]) -> str:
    k = r["centres"] / 1000
    boards = r["queries"]
    worst = sorted(
        (q for b in boards.values() for q in b["queries"] if q["p99_s"] is not None),
        key=lambda q: -q["p99_s"],
    )[:3]
    groups = ", ".join(
        f"{name} mean {g['mean_s'] * 1000:.1f} ms, p99 {g['p99_s'] * 1000:.1f} ms"
        for name, g in sorted(r["vmalert_groups"].items())
        if g["mean_s"] is not None
    )
    shipped = sum(r["centre_shipped_series"].values())
    lines = [
        f"<!-- fleet-scale {r['label']} {r['centres']} -->",
        f"**{r['label']} set, {r['centres']:,} centres** ({r['commit']}, {r['date']}; "
        f"`bench/fleet_scale.py --centres {r['centres']} --label {r['label']}"
        + (f" --interval-cap {cap:g}" if (cap := r.get("interval_cap_s")) else "")
        + "`): a centre "
        f"exposes {r['centre_exposed_series']:,} series and ships {shipped:,} ("
        + ", ".join(f"{job} {n:,}" for job, n in r["centre_shipped_series"].items())
        + f"), {r['centre_samples_per_s']:.1f} samples/s. {r['targets_up']:,} of "
        f"{r['targets']:,} targets up; ingestion measured over {r['window_s']:.0f} s after "
        f"{r['settled_after_s']:.0f} s of settling, then the rules over "
        f"{r['rules_window_s']:.0f} s.",
        "",
        "| figure | whole fleet | per 1,000 centres |",
        "|---|---|---|",
        f"| VictoriaMetrics CPU (utime+stime) | {r['vm_cpu_cores']:.3f} cores | "
        f"{r['vm_cpu_cores'] / k:.3f} cores |",
        f"| VictoriaMetrics RSS (VmRSS; VmHWM) | {r['vm_rss_mib']:,.0f} MiB; "
        f"{r['vm_hwm_mib']:,.0f} MiB | {r['vm_rss_mib'] / k:,.0f} MiB |",
        f"| active series | {r['active_series']:,.0f} | {r['active_series'] / k:,.0f} |",
        f"| samples ingested per second | {r['samples_per_s']:,.0f} | "
        f"{r['samples_per_s'] / k:,.0f} |",
        *(
            [
                "| samples vmagent sent per second (left in its buffer at the end) | "
                f"{r['offered_samples_per_s']:,.0f} ({r['vmagent_pending_bytes_at_end']:,.0f} "
                "bytes) | |"
            ]
            if "offered_samples_per_s" in r  # runs before 2026-11-30 lack it
            else []
        ),
        f"| disk per day (data {r['disk_bytes_per_row']:.2f} bytes/sample; index "
        f"{r['index_bytes_per_series'] or 0:.0f} bytes/series) | "
        f"{r['disk_bytes_per_day'] / 1e9:.2f} GB | {r['disk_bytes_per_day'] / 1e9 / k:.2f} GB |",
        f"| vmagent scraping all (CPU; RSS) | {r['vmagent_cpu_cores']:.3f} cores; "
        f"{r['vmagent_rss_mib']:,.0f} MiB | |",
        f"| VictoriaMetrics CPU while vmalert runs the shipped rules | "
        f"{r['vm_cpu_cores_with_rules']:.3f} cores | "
        f"{r['vm_cpu_cores_with_rules'] / k:.3f} cores |",
        f"| vmalert (CPU; rule errors) | {r['vmalert_cpu_cores']:.3f} cores; "
        f"{r['vmalert_rule_errors']:.0f} | |",
        "",
        "vmalert evaluation every 10 s, per group (mean over the window; p99 of vmalert's "
        f"summary): {groups}.",
        *(
            [
                "",
                "Groups with their own interval, one evaluation each (their rules as instant "
                "queries at the end of the run): "
                + ", ".join(
                    f"{name} {g['seconds'] * 1000:.1f} ms for {g['series']:,} series, every "
                    f"{g['interval']}"
                    for name, g in sorted(r["slow_groups"].items())
                )
                + ".",
            ]
            if r.get("slow_groups")  # runs before 2026-11-30 lack them
            else []
        ),
        "",
        "Dashboard queries (nocache, "
        + ", ".join(
            f"{name}: {len(b['queries'])} queries x {b['all']['n'] // max(1, len(b['queries']))}"
            f", p50 {b['all']['median'] * 1000:.1f} ms, p99 {b['all']['p99'] * 1000:.1f} ms"
            for name, b in boards.items()
        )
        + "); heaviest by p99: "
        + "; ".join(f"`{q['expr']}` p99 {q['p99_s'] * 1000:.1f} ms" for q in worst)
        + ".",
        "<!-- /fleet-scale -->",
    ]
    return "\n".join(lines)


def write_results(path: Path, block: str, label: str, centres: int) -> None:
    """Put `block` into the "Fleet scale" subsection of "## On-demand runs", replacing the block
    of the same set and fleet size."""
    text = path.read_text()
    heading = "### Fleet scale\n"
    if heading not in text:
        intro = (
            f"{heading}\n`bench/fleet_scale.py` (its docstring gives the method): simulated "
            "centres from the reference centre's real exposition, through real vmagent into "
            "one VictoriaMetrics single node, with vmalert on the shipped rules. Both are "
            "Debian's 1.79.5; 2 cores shared with other jobs.\n\n"
        )
        anchor = text.index("## On-demand runs")
        after = text.index("\n### ", anchor) + 1
        text = text[:after] + intro + text[after:]
    pattern = re.compile(
        rf"<!-- fleet-scale {re.escape(label)} {centres} -->.*?"
        r"<!-- /fleet-scale -->\n",
        re.DOTALL,
    )
    if pattern.search(text):
        text = pattern.sub(lambda _: block + "\n", text)
    else:
        start = text.index(heading)
        end = text.find("\n### ", start + len(heading))
        end = len(text) if end < 0 else end + 1
        text = text[:end].rstrip("\n") + "\n\n" + block + "\n\n" + text[end:]
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    server = sub.add_parser("serve", help="internal: the fleet's scrape server")
    server.add_argument("--table", type=Path, required=True)
    server.add_argument("--port", type=int, required=True)
    parser.add_argument("--centres", type=int, default=1000)
    parser.add_argument("--settle", type=float, default=240, help="least seconds before measuring")
    parser.add_argument("--measure", type=float, default=300, help="seconds of the window")
    parser.add_argument("--repeats", type=int, default=20, help="runs of each dashboard query")
    parser.add_argument(
        "--interval-cap",
        type=float,
        help="seconds: scrape every job at least this often (the CI test's short run)",
    )
    parser.add_argument("--capture-settle", type=float, default=35)
    parser.add_argument(
        "--capture-gap",
        type=float,
        default=45,
        help="seconds between the two reads: over the 30 s polls and probes",
    )
    parser.add_argument("--label", default="shipped", help="names the set in RESULTS.md")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--results", type=Path, help="RESULTS.md to write the figures into")
    parser.add_argument("--from-json", type=Path, help="write a saved run's figures, run nothing")
    args = parser.parse_args()
    if args.command == "serve":
        asyncio.run(serve(args.table, args.port))
        return
    if args.from_json:
        result = json.loads(args.from_json.read_text())
    else:
        result = run(args)
        write_result(args.json, result)
    if args.results:
        write_results(args.results, report(result), args.label, args.centres)


if __name__ == "__main__":
    main()
