"""Lean shipping loses nothing PSEB or a site admin needs: every metric any shipped rule or
dashboard panel reads, with the labels it selects on, is shipped by deploy/vmagent/scrape.yml
(and scrape-secured.yml), and the promtool rule tests feed the rules only series that are
shipped. What the lean set leaves out (access ports port by port) stays in the agent's /metrics.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.relabel import jobs, kept

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RULE_FILES = sorted((DEPLOY / "prometheus" / "rules").glob("*.yml"))
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
PROMTOOL_TESTS = sorted((DEPLOY / "prometheus" / "tests").glob("*.test.yml"))
CATALOGUE = yaml.safe_load((ROOT / "exporters" / "catalogue.yaml").read_text())
SELECTOR = re.compile(r"\b(erozgar_[a-z0-9_]+)\b(?!:)(\{[^}]*\})?")
MATCHER = re.compile(r"(\w+)\s*(=~|!=|!~|=)\s*[\"']([^\"']*)[\"']")
HISTOGRAM = ("_bucket", "_sum", "_count")
# Recorded centrally, not exported by the agent: the site inventory (deploy/fleet/).
CENTRAL = {"erozgar_site_info"}


def rule_texts() -> list[tuple[str, str]]:
    """(where, text) of every expression and annotation of the shipped rules."""
    texts = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                where = f"{path.name}: {rule.get('alert') or rule.get('record')}"
                texts.append((where, rule["expr"]))
                texts += [(where, text) for text in rule.get("annotations", {}).values()]
    return texts


def panel_texts() -> list[tuple[str, str]]:
    texts = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for inner in [panel, *panel.get("panels", [])]:
                for target in inner.get("targets", []):
                    texts.append((f"{path.name}: {inner['title']}", target["expr"]))
    return texts


def recorded() -> set[str]:
    return {
        rule["record"]
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "record" in rule
    }


def selections(text: str) -> list[tuple[str, list[dict[str, str]]]]:
    """(metric, label sets to try) for each agent metric `text` selects: one per alternative
    of an equality or simple regex matcher; labels with template values are left out."""
    found = []
    for name, braces in SELECTOR.findall(text):
        if name in CENTRAL or name in recorded():
            continue
        options: list[dict[str, str]] = [{}]
        for label, op, value in MATCHER.findall(braces or ""):
            if op not in ("=", "=~") or "$" in value or "%" in value:
                continue
            alternatives = value.split("|") if op == "=~" else [value]
            options = [{**o, label: alt} for o in options for alt in alternatives]
        found.append((name, options))
    return found


def _families() -> set[str]:
    return {f"erozgar_{n}" for n in CATALOGUE}


def family(name: str) -> str:
    """The catalogue family of a name (a histogram's _bucket, _sum and _count are its own)."""
    for suffix in HISTOGRAM:
        if name.endswith(suffix) and name.removesuffix(suffix) in _families():
            return name.removesuffix(suffix)
    return name


def shipped_by_some_job(shipped: str, name: str, labels: dict[str, str]) -> bool:
    """Some job ships it: with the labels given, or (a label not selected on) with a port role
    that is shipped (a panel of every port still has the WAN ports and uplinks)."""
    tries = [labels] if "role" in labels else [{**labels, "role": r} for r in ("wan", "uplink")]
    return any(kept(rules, name, t) for rules in jobs(shipped).values() for t in tries)


@pytest.mark.parametrize("shipped", ["scrape.yml", "scrape-secured.yml"])
def test_every_metric_a_rule_or_panel_reads_is_shipped(shipped: str) -> None:
    missing = []
    for where, text in rule_texts() + panel_texts():
        for name, options in selections(text):
            assert family(name) in _families(), f"{where}: {name} is not an agent metric"
            missing += [
                f"{where}: {name}{labels or ''}"
                for labels in options
                if not shipped_by_some_job(shipped, name, labels)
            ]
    assert not missing, "not shipped by the lean set:\n" + "\n".join(missing)


def test_the_promtool_tests_feed_the_rules_only_shipped_series() -> None:
    """promtool's rule tests run against the lean set: no input series the centre never gets."""
    unshipped = []
    cases = [c for path in PROMTOOL_TESTS for c in yaml.safe_load(path.read_text())["tests"]]
    for case in cases:
        for item in case.get("input_series", []):
            name, _, rest = item["series"].partition("{")
            labels = dict((k, v) for k, _, v in MATCHER.findall(rest))
            if name in CENTRAL or any(kept(r, name, labels) for r in jobs().values()):
                continue
            unshipped.append(f"{case['name']}: {item['series']}")
    assert not unshipped, "\n".join(unshipped)


def test_access_ports_stay_on_site_and_their_summary_is_shipped() -> None:
    """What the lean set is for: an access port's series are dropped, a WAN port's and an
    uplink's are not, and the per-device summary is."""
    (slow,) = [rules for job, rules in jobs().items() if job == "erozgar-agent"]
    port = {"device": "sw-1", "interface": "ge-0/0/7"}
    assert not kept(slow, "erozgar_interface_receive_bytes_total", {**port, "role": "lan"})
    for role in ("wan", "uplink"):
        assert kept(slow, "erozgar_interface_receive_bytes_total", {**port, "role": role})
    assert kept(slow, "erozgar_interface_rejected_deltas_total", {"device": "sw-1"})
    for name in ("access_ports_up", "access_receive_bytes_total", "access_errors_total"):
        assert kept(slow, f"erozgar_{name}", {"device": "sw-1"})
