"""The shipped vmagent scrape config's metric_relabel_configs applied in Python, for tests that
ask what a centre ships without running vmagent (tests/integration/test_deploy_fleet.py runs
the real one). Only the actions the shipped configs use (keep, drop) are known; any other fails.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml

VMAGENT = Path(__file__).resolve().parents[1] / "deploy" / "vmagent"
Series = tuple[str, frozenset[tuple[str, str]]]


DETAIL = "erozgar-agent-detail"  # its targets come from the centre only on demand


def jobs(shipped: str = "scrape.yml", detail: bool = False) -> dict[str, list[dict]]:
    """job name -> its metric_relabel_configs, from deploy/vmagent/`shipped`: the lean set's
    jobs, and the detail-on-demand job too if `detail`."""
    config = yaml.safe_load((VMAGENT / shipped).read_text())
    return {
        job["job_name"]: job.get("metric_relabel_configs", [])
        for job in config["scrape_configs"]
        if detail or job["job_name"] != DETAIL
    }


def kept(rules: list[dict], name: str, labels: Mapping[str, str]) -> bool:
    """Whether one series survives `rules` (Prometheus semantics: anchored regex, ';' joins)."""
    values = {**labels, "__name__": name}
    for rule in rules:
        action = rule.get("action", "replace")
        assert action in ("keep", "drop"), f"relabel action {action} is not modelled here"
        joined = rule.get("separator", ";").join(values.get(s, "") for s in rule["source_labels"])
        matched = re.fullmatch(rule.get("regex", "(.*)"), joined) is not None
        if matched != (action == "keep"):
            return False
    return True


def shipped(
    series: Iterable[Series], shipped: str = "scrape.yml", detail: bool = False
) -> dict[str, set[Series]]:
    """job name -> the series of one scrape of the agent that job ships."""
    return {
        job: {s for s in series if kept(rules, s[0], dict(s[1]))}
        for job, rules in jobs(shipped, detail).items()
    }
