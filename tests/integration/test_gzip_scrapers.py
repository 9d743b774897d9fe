"""The gzip body a scrape gets is chained from pre-compressed pieces (exporters/exposition.py):
the real scrapers (Prometheus, vmagent, curl --compressed) must read all of it, CRC included."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest

from exporters.http import MetricsServer
from exporters.prometheus import build_registry
from tests.unit.test_exposition_cache import _hub

from .conftest import require
from .deploy_stack import free_tcp_port, http_get, running


@pytest.fixture(scope="module")
def hub_endpoint() -> Iterator[tuple[int, int]]:
    """A 40-switch hub's /metrics (over a thousand pieces) and its sample count."""
    registry = build_registry(_hub(40))
    text = generate_latest(registry).decode()
    samples = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    server = MetricsServer(registry, "127.0.0.1", 0, healthy=lambda: True)
    server.start()
    try:
        yield server.address[1], samples
    finally:
        server.stop()


def _scraped(api: str, target_port: int, deadline_s: float = 30) -> dict[str, object]:
    """The scraper's target entry for the agent once a scrape of it succeeded or failed."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        for target in json.loads(http_get(f"{api}/api/v1/targets"))["data"]["activeTargets"]:
            # "down" with no error yet is vmagent's state before the first scrape
            if str(target_port) in target["scrapeUrl"] and (
                target["health"] == "up" or target["lastError"]
            ):
                return target  # type: ignore[no-any-return]
        time.sleep(0.3)
    pytest.fail(f"{api} did not scrape the agent in {deadline_s:g}s")


def _scrape_config(port: int) -> str:
    job = {"job_name": "agent", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
    return yaml.safe_dump({"global": {"scrape_interval": "1s"}, "scrape_configs": [job]})


def test_curl_compressed_reads_the_whole_body(hub_endpoint: tuple[int, int]) -> None:
    port, samples = hub_endpoint
    out = subprocess.run([require("curl"), "-sS", "--fail", "--compressed",
                          f"http://127.0.0.1:{port}/metrics"],
                         capture_output=True, check=True, timeout=30)  # fmt: skip
    lines = out.stdout.decode().splitlines()
    assert sum(1 for line in lines if line and not line.startswith("#")) == samples
    assert lines[-1].startswith("erozgar_")  # the tail too, not only the first piece


def test_prometheus_scrapes_every_sample(hub_endpoint: tuple[int, int], tmp_path: Path) -> None:
    port, samples = hub_endpoint
    (tmp_path / "prometheus.yml").write_text(_scrape_config(port))
    web = free_tcp_port()
    argv = [require("prometheus"), f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{web}"]  # fmt: skip
    api = f"http://127.0.0.1:{web}"
    with running(argv, tmp_path / "prometheus.log", f"{api}/-/ready"):
        target = _scraped(api, port)
        assert (target["health"], target["lastError"]) == ("up", "")
        # the target's status may be updated before its samples can be queried
        deadline = time.monotonic() + 10
        while not (
            result := json.loads(http_get(f"{api}/api/v1/query?query=scrape_samples_scraped"))[
                "data"
            ]["result"]
        ):
            assert time.monotonic() < deadline, "scrape_samples_scraped never queryable"
            time.sleep(0.2)
    assert float(result[0]["value"][1]) == samples


def test_vmagent_scrapes_every_sample(hub_endpoint: tuple[int, int], tmp_path: Path) -> None:
    port, samples = hub_endpoint
    (tmp_path / "scrape.yml").write_text(_scrape_config(port))
    web = free_tcp_port()
    argv = [require("vmagent"), f"-promscrape.config={tmp_path / 'scrape.yml'}",
            f"-httpListenAddr=127.0.0.1:{web}", f"-remoteWrite.tmpDataPath={tmp_path / 'q'}",
            f"-remoteWrite.url=http://127.0.0.1:{free_tcp_port()}/api/v1/write"]  # fmt: skip
    api = f"http://127.0.0.1:{web}"
    with running(argv, tmp_path / "vmagent.log", f"{api}/health"):
        target = _scraped(api, port)
        assert (target["health"], target["lastError"]) == ("up", "")
        assert target["lastSamplesScraped"] == samples
