"""The fleet benchmark runs end to end: bench/fleet_scale.py with 50 centres, each job scraped at
least every 20 s, for about half a minute (the on-demand run measures 1,000 and more for minutes
at the shipped intervals) through the real agent, vmagent, VictoriaMetrics and vmalert, and
produces every figure RESULTS.md gets. Figures are not judged here (speed belongs to bench/);
that each exists, that every centre arrives, and that every dashboard query answers, with data
wherever the reference centre ships what it reads, is."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import require

ROOT = Path(__file__).resolve().parents[2]
CENTRES = 50


@pytest.mark.integration
@pytest.mark.timeout(480)
def test_fleet_benchmark_produces_its_figures(tmp_path: Path) -> None:
    for binary in ("victoria-metrics", "vmagent", "vmalert", "erozgar-agent"):
        require(binary)
    out, results = tmp_path / "fleet.json", tmp_path / "RESULTS.md"
    results.write_text("# Results\n\n## On-demand runs\n\n### Soak run\n\nkept\n")
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fleet_scale.py"), "--centres", str(CENTRES),
         "--settle", "20", "--measure", "35", "--repeats", "3", "--label", "ci",
         "--interval-cap", "20",
         "--json", str(out), "--results", str(results)],
        capture_output=True, text=True, timeout=460, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    r = json.loads(out.read_text())
    jobs = r["centre_shipped_series"]
    assert jobs and all(n > 0 for n in jobs.values()), jobs
    # Every centre's every job is scraped, and every shipped series of every centre is live.
    assert r["targets_up"] == r["targets"] == CENTRES * len(jobs)
    assert r["active_series"] >= CENTRES * sum(jobs.values())
    expected = CENTRES * r["centre_samples_per_s"]
    assert 0.8 * expected < r["samples_per_s"] < 1.25 * expected, (r["samples_per_s"], expected)
    for figure in ("vm_cpu_cores", "vm_rss_mib", "disk_bytes_per_row", "disk_bytes_per_day"):
        assert r[figure] > 0, figure
    assert r["vmalert_rule_errors"] == 0
    assert r["vmalert_groups"] and all(
        g["iterations"] >= 3 for g in r["vmalert_groups"].values()
    ), r["vmalert_groups"]
    # the hourly and slower groups, timed as one evaluation each: they answer, without errors
    assert r["slow_groups"] and all(
        g["seconds"] > 0 and not g["errors"] for g in r["slow_groups"].values()
    ), r["slow_groups"]
    assert "Groups with their own interval, one evaluation each" in results.read_text()
    for board in ("erozgar-fleet", "erozgar-centre"):
        queries = r["queries"][board]["queries"]
        assert len(queries) >= 10, board
        failed = [(q["expr"], q["errors"]) for q in queries if q["errors"]]
        assert not failed, failed
        empty = [q["expr"] for q in queries if q["expects_data"] and not q["results"]]
        assert not empty, f"{board}: no data for {empty}"
    text = results.read_text()
    assert f"**ci set, {CENTRES} centres**" in text
    assert "--interval-cap 20`" in text
    assert "| VictoriaMetrics CPU (utime+stime) |" in text
    assert text.index("### Fleet scale") < text.index("### Soak run")
    assert "kept" in text
