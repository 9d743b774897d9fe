"""Families for ISP capacity tests: the latest measured rates against the contract, per link."""

from __future__ import annotations

from agent.checks.capacity import CapacityStatus
from agent.state import AgentState

from .families import Families, Family

_LINK = ["link"]


def capacity_families(state: AgentState) -> list[Family]:
    out = Families()
    for status in list(state.capacity.values()):
        _link(out, status)
    return list(out)


def _link(out: Families, status: CapacityStatus) -> None:
    key = [status.link]
    tests = out.counter(
        "capacity_tests",
        "Capacity tests run, by method (iperf3, http, none) and result (pass, below: under the "
        "contract share, error).",
        ["link", "method", "result"],
    )
    for method, verdict, count in status.tests:
        tests.add_metric([status.link, method, verdict], count)
    out.counter(
        "capacity_test_bytes", "Bytes the capacity tests moved, both directions.", _LINK
    ).add_metric(key, status.bytes_total)
    good = status.last_success
    if good is None:
        return
    out.gauge(
        "capacity_test_last_success_timestamp_seconds",
        "Unix time the latest capacity test that measured both directions finished.",
        _LINK,
    ).add_metric(key, good.finished)
    for direction, rate, contract in (
        ("download", good.download_bps, good.contract_down_bps),
        ("upload", good.upload_bps, good.contract_up_bps),
    ):
        if rate is not None:
            out.gauge(
                f"capacity_{direction}_bytes_per_second",
                f"The {direction} rate the latest successful capacity test measured.",
                _LINK,
            ).add_metric(key, rate / 8)
        if contract:
            out.gauge(
                "capacity_contract_bytes_per_second",
                "The rate the ISP sells, by direction (the router port's capacity_*_mbps, else "
                "the capacity test's).",
                ["direction", "link"],
            ).add_metric([direction, status.link], contract / 8)
        ratio = good.ratio(direction)  # type: ignore[arg-type]
        if ratio is not None:
            out.gauge(
                "capacity_contract_ratio",
                "Delivered / contracted rate in the latest successful capacity test, by direction.",
                ["direction", "link"],
            ).add_metric([direction, status.link], ratio)
    if good.loaded_latency_seconds is not None:
        out.gauge(
            "capacity_loaded_latency_seconds",
            "Median probe round-trip time while the latest successful capacity test ran.",
            _LINK,
        ).add_metric(key, good.loaded_latency_seconds)
