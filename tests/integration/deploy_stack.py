"""The central side's real binaries on loopback, started from the shipped deploy/ files.

Units are not run by systemd here: `unit_command` reads a unit's ExecStart, fills in its
environment and specifiers, and tests override only the flags they name (shorter intervals,
loopback ports, temporary directories), so what runs is what ships.
"""

from __future__ import annotations

import json
import re
import shlex
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from .conftest import require, stop

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RULES = DEPLOY / "prometheus" / "rules"
RENDER_SITES = DEPLOY / "fleet" / "render_sites.py"
DETAIL = "erozgar-agent-detail"  # the detail-on-demand job of deploy/vmagent/scrape.yml
SHIPPER_LABELS = ("site", "region", "job", "instance")  # what vmagent adds to every series
Series = tuple[str, frozenset[tuple[str, str]]]


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unit_command(unit: Path, env: dict[str, str], specifiers: dict[str, str]) -> list[str]:
    """ExecStart of `unit` as argv, with ${NAME} from `env` and %X from `specifiers`."""
    text = unit.read_text()
    match = re.search(r"^ExecStart=((?:.*\\\n)*.*)$", text, re.MULTILINE)
    assert match, f"{unit.name}: no ExecStart"
    line = match.group(1).replace("\\\n", " ")
    line = re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], line)
    line = re.sub(r"%(\w)", lambda m: specifiers[m.group(1)], line)
    return shlex.split(line)


def with_flags(argv: list[str], **flags: str) -> list[str]:
    """`argv` with each -name=value in `flags` replaced or added (dots spelled as __)."""
    wanted = {name.replace("__", "."): value for name, value in flags.items()}
    kept = [a for a in argv if a.split("=", 1)[0].lstrip("-") not in wanted]
    return kept + [f"-{name}={value}" for name, value in wanted.items()]


def flag(argv: list[str], name: str) -> str:
    (value,) = [a.split("=", 1)[1] for a in argv if a.split("=", 1)[0] == f"-{name}"]
    return value


def http_get(url: str, timeout: float = 5) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def wait_http(
    url: str, process: subprocess.Popen[bytes], log: Path, deadline_s: float = 30
) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{process.args[0]} exited {process.returncode}: {log.read_text()[-3000:]}")
        try:
            http_get(url, timeout=1)
            return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"{url} not ready in {deadline_s:g}s: {log.read_text()[-3000:]}")


@contextmanager
def running(
    argv: list[str], log: Path, ready_url: str, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Start `argv` (output to `log`), wait until `ready_url` answers, stop it afterwards."""
    require(argv[0])
    with log.open("ab") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_http(ready_url, process, log)
        yield process
    finally:
        if process.poll() is None:
            stop(process)


def render_sites(rows: list[tuple[str, str, str, str]], target: Path) -> Path:
    """The erozgar_site_info rules for `rows` (site, site_name, region, admin_email)."""
    csv = target.with_suffix(".csv")
    csv.write_text(
        "site,site_name,region,admin_email\n" + "".join(",".join(r) + "\n" for r in rows)
    )
    rendered = subprocess.run(
        ["python3", str(RENDER_SITES), str(csv)], capture_output=True, text=True, check=True
    )
    target.write_text(rendered.stdout)
    return target


def scrape_config(
    fast_s: float,
    slow_s: float,
    target: str,
    extra_labels: dict[str, str],
    shipped: str = "scrape.yml",
    paths: dict[str, str] | None = None,
    detail: bool = False,
) -> str:
    """deploy/vmagent/`shipped` with shorter intervals, another target and target labels, and
    each file path in `paths` (shipped path -> test path) replaced. The detail-on-demand job
    (its targets from the centre, vmagent only) is left out unless `detail`."""
    import yaml

    text = (DEPLOY / "vmagent" / shipped).read_text()
    for path, replacement in (paths or {}).items():
        assert path in text, f"{shipped} names no {path}"
        text = text.replace(path, replacement)
    config = yaml.safe_load(text)
    config["global"]["scrape_interval"] = f"{slow_s:g}s"
    config["global"]["scrape_timeout"] = f"{min(slow_s, 10):g}s"
    if not detail:
        config["scrape_configs"] = [j for j in config["scrape_configs"] if j["job_name"] != DETAIL]
    for job in config["scrape_configs"]:
        interval = fast_s if job["job_name"] == "erozgar-agent-fast" else slow_s
        job["scrape_interval"] = f"{interval:g}s"
        job["scrape_timeout"] = f"{min(interval, 5):g}s"
        if job["job_name"] == DETAIL:  # whatever the centre lists, the agent is scraped
            (address,) = [r for r in job["relabel_configs"] if r["target_label"] == "__address__"]
            address["replacement"] = target
            continue
        job["static_configs"] = [{"targets": [target], "labels": extra_labels}]
        if not extra_labels:
            del job["static_configs"][0]["labels"]
    return yaml.safe_dump(config, sort_keys=False)


class VictoriaMetrics:
    """The shipped erozgar-victoriametrics.service on a loopback port; can stop and restart."""

    def __init__(self, root: Path, retention: str = "1") -> None:
        """`retention`: months (or 2y, ...); samples older than it are refused."""
        self.port = free_tcp_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / "victoria-metrics.log"
        env = {"EROZGAR_RETENTION": retention, "EROZGAR_VM_LISTEN": f"127.0.0.1:{self.port}"}
        self.argv = unit_command(
            DEPLOY / "systemd" / "erozgar-victoriametrics.service", env, {"S": str(root)}
        )
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        require(self.argv[0])
        with self.log.open("ab") as out:
            self._process = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT)
        wait_http(f"{self.url}/health", self._process, self.log)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            stop(self._process)

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr, "nocache": 1})
        return json.loads(http_get(url))["data"]["result"]

    def series(self, match: str) -> set[Series]:
        """(name, labels) of the series matching `match`, without SHIPPER_LABELS."""
        url = f"{self.url}/api/v1/series?" + urllib.parse.urlencode({"match[]": match})
        found = set()
        for labels in json.loads(http_get(url, timeout=30))["data"]:
            name = labels.pop("__name__")
            labels = {k: v for k, v in labels.items() if k not in SHIPPER_LABELS}
            found.add((name, frozenset(labels.items())))
        return found

    def export(self, match: str) -> list[dict[str, Any]]:
        """Every raw sample of the series matching `match` (VictoriaMetrics' export API)."""
        url = f"{self.url}/api/v1/export?" + urllib.parse.urlencode({"match[]": match})
        return [json.loads(line) for line in http_get(url, timeout=30).splitlines() if line]


def vmagent_command(
    root: Path, remote_write_url: str, site: str, scrape_yml: str, port: int
) -> list[str]:
    """The shipped erozgar-vmagent.service, pointed at `remote_write_url`, listening on `port`."""
    credentials = root / "credentials"
    credentials.mkdir(exist_ok=True)
    (credentials / "remote-write-password").write_text("test-password\n")
    (root / "scrape.yml").write_text(scrape_yml)
    env = {
        "EROZGAR_SITE": site,
        "EROZGAR_REGION": "test",
        "EROZGAR_REMOTE_WRITE_URL": remote_write_url,
    }
    argv = unit_command(
        DEPLOY / "systemd" / "erozgar-vmagent.service",
        env,
        {"d": str(credentials), "S": str(root)},
    )
    return with_flags(
        argv,
        promscrape__config=str(root / "scrape.yml"),
        httpListenAddr=f"127.0.0.1:{port}",
    )


def vmagent_metric(port: int, name: str) -> float:
    """Sum of one of vmagent's own metrics over its label sets."""
    total = 0.0
    for line in http_get(f"http://127.0.0.1:{port}/metrics").decode().splitlines():
        if line.startswith(name) and line[len(name)] in "{ ":
            total += float(line.rsplit(" ", 1)[1])
    return total


class Sink:
    """A tiny HTTP server that records every POST (path, JSON body, arrival time)."""

    def __init__(self) -> None:
        received: list[tuple[str, Any, float]] = []
        condition = threading.Condition()
        self.received, self.condition = received, condition

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with condition:
                    received.append((self.path, json.loads(body or b"null"), time.monotonic()))
                    condition.notify_all()
                # Telegram's sendMessage answer: Alertmanager 0.25 dereferences result.chat
                # (it panics on a bare {"ok": true}).
                reply = b'{"ok": true, "result": {"message_id": 1, "date": 0, "chat": {"id": 1}}}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test reports what matters."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def wait_for(self, predicate: Any, timeout: float) -> tuple[str, Any, float] | None:
        """The first recorded POST for which `predicate(path, body)` holds, or None."""
        deadline = time.monotonic() + timeout
        with self.condition:
            while True:
                for item in self.received:
                    if predicate(item[0], item[1]):
                        return item
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.condition.wait(left)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def scrape_series(port: int) -> set[Series]:
    """The series of one scrape of the agent at `port`: (name, labels) without the labels the
    shipper adds (site, region, job, instance)."""
    from prometheus_client.parser import text_string_to_metric_families

    text = http_get(f"http://127.0.0.1:{port}/metrics").decode()
    return {
        (sample.name, frozenset((k, v) for k, v in sample.labels.items() if k != "site"))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@contextmanager
def agent_process(config: dict[str, Any], root: Path, devices: int) -> Iterator[int]:
    """`erozgar-agent run` with `config`; yields its port once all `devices` were polled."""
    import yaml

    path = root / "agent.yml"
    path.write_text(yaml.safe_dump(config))
    port = free_tcp_port()
    argv = [require("erozgar-agent"), "run", "--config", str(path), "--listen", f"127.0.0.1:{port}"]
    log = root / "agent.log"
    with running(argv, log, f"http://127.0.0.1:{port}/healthz"):
        deadline = time.monotonic() + 60
        polled = 0
        while time.monotonic() < deadline:
            text = http_get(f"http://127.0.0.1:{port}/metrics").decode()
            polled = text.count("\nerozgar_device_poll_duration_seconds{")
            if polled >= devices:
                break
            time.sleep(0.3)
        else:
            pytest.fail(f"agent polled {polled} of {devices} devices in 60 s: {log.read_text()}")
        yield port
