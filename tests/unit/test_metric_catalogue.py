"""The metric catalogue (exporters/catalogue.yaml) is what /metrics really carries.

One AgentState holds every device kind and path the golden fixtures record (every SNMP router
and UPS card recording replayed, every Modbus register image, every NUT dump), plus what only
time or trouble produces (a device down, a full battery ledger, a wan failover, WAN links with
probe errors, a loss of service, the host): every family the agent's registries then export
must be in the catalogue with its type, labels and help, and every catalogue entry must be
exported unless it says `only_when:`. The catalogue is linted with Prometheus's naming rules and
README's Metrics table must name the same families with the same labels.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from pathlib import Path
from types import MappingProxyType

import pytest
import yaml
from prometheus_client import CollectorRegistry

from agent.checks.availability import AvailabilityTotals
from agent.checks.capacity import CapacityResult, CapacityStatus
from agent.checks.centre_power import SOURCES, CentrePowerStatus
from agent.checks.genset import StartRecord
from agent.checks.link_quality import (
    RTT_BUCKETS,
    DnsStatus,
    HttpStatus,
    LinkStatus,
    TargetStatus,
)
from agent.checks.power import UpsStatus
from agent.checks.service import CAUSES, Loss, ServiceStatus
from agent.checks.wan import WanStatus
from agent.config import parse_config
from agent.kinds.nut import nut_poller
from agent.ledger import LEDGER_CAUSES
from agent.reload import ReloadStatus
from agent.schedule import MonotonicScheduler
from agent.state import AgentState, DeviceState, RouterStatus
from collectors.dns import DnsReading
from collectors.host import read_host
from collectors.http_probe import PHASES, HttpReading
from exporters.genset import CentrePowerCollector
from exporters.prometheus import build_registry
from exporters.runtime import RuntimeCollector
from exporters.service import ServiceCollector
from simulators.modbus_server import READ_HOLDING, ModbusTcpServer
from tests.golden import poll_once
from tests.nut_replay import UpsdReplay, read_dev
from tests.snmp_replay import RECORDINGS, ReplaySessions, SnmpPeer, recording_name, recording_path
from tests.unit.test_modbus_golden import CASES, case_poller, device_list, read_case, register_image
from tests.unit.test_nut_golden import DUMPS
from tests.unit.test_snmp_golden import polled_state

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "exporters" / "catalogue.yaml"
PREFIX = "erozgar_"
# Prometheus base units (https://prometheus.io/docs/practices/naming/#base-units), plus the
# dimensionless ratio (0..1) and the rate of bytes the agent exports.
UNITS = {
    "seconds", "bytes", "bytes_per_second", "ratio", "volts", "amperes", "watts",
    "volt_amperes", "hertz", "celsius", "ohms", "joules",
}  # fmt: skip
# Name parts that mean a unit other than the base one.
NOT_BASE = re.compile(
    r"_(milli|micro|nano|kilo|mega|giga)?(bits|ms|us|ns|minutes|hours|days|percent|fahrenheit"
    r"|kilobytes|megabytes|gigabytes|milliseconds|microseconds|kelvin)(_|$)"
)
SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
Exported = dict[str, tuple[str, frozenset[str], str]]  # name -> (type, labels, help)


def catalogue() -> dict[str, dict]:
    return yaml.safe_load(CATALOGUE.read_text(encoding="utf-8"))


def _snmp_devices(state: AgentState) -> None:
    sessions = ReplaySessions(recording_path(relative) for relative in RECORDINGS)
    for relative in RECORDINGS:
        community = recording_name(recording_path(relative))
        _, device = polled_state(SnmpPeer("127.0.0.1", 161, community), sessions, community)
        assert device.up, device.message
        state.devices[community] = device


async def _modbus_device(state: AgentState, case: Path) -> None:
    registers = read_case(case, "registers.yaml")
    image = register_image(registers)

    def source(unit: int, function: int, address: int, count: int) -> list[int]:
        table = "holding" if function == READ_HOLDING else "input"
        return [image[(table, at)] for at in range(address, address + count)]

    server = ModbusTcpServer(source)
    host, port = await server.start()
    name = f"modbus-{case.name}"
    device = state.devices[name] = DeviceState(name, device_list(registers))
    try:
        await poll_once(case_poller(registers, f"{host}:{port}", device), state, name)
    finally:
        await server.stop()


async def _nut_device(state: AgentState, dump: Path) -> None:
    server = UpsdReplay({"ups": read_dev(dump)})
    host, port = await server.start()
    name = f"nut-{dump.stem}"
    config = parse_config(
        {"site": {"id": "catalogue"},
         "nut": [{"name": name, "address": f"{host}:{port}", "ups": "ups"}]}
    )  # fmt: skip
    device = state.devices[name] = DeviceState(name, "nut")
    try:
        await poll_once(nut_poller(config.nut[0], device), state, name)
    finally:
        await server.stop()


def _rare_states(state: AgentState) -> None:
    """What the fixtures cannot show after one poll: trouble, history, links, the host."""
    down = state.devices["sw-down"] = DeviceState("sw-down", "snmp", up=False, reason="timeout")
    down.errors["timeout"] = 3
    ups = state.devices["modbus-apc-smart-ups"]
    assert ups.battery is not None
    ups.battery = dataclasses.replace(
        ups.battery,
        **{f.name: 1.0 for f in dataclasses.fields(ups.battery) if getattr(ups.battery, f.name)
           is None},  # every estimate that needs outages or time
        selftest_result="passed",
        state_errors={"corrupt": 1},
    )  # fmt: skip
    assert isinstance(ups.status, UpsStatus)
    # the images hold sentinels; only inverter maps (now their own role) had power, temperature
    values = {
        "ups.efficiency": 95.0, "battery.power": -120.0, "ups.realpower": 850.0,
        "ups.temperature": 35.0,
    }  # fmt: skip
    ups.status = dataclasses.replace(
        ups.status, values=MappingProxyType({**ups.status.values, **values})
    )
    router = next(d for d in state.devices.values() if isinstance(d.status, RouterStatus))
    assert isinstance(router.status, RouterStatus) and router.status.interfaces
    first = router.status.interfaces[0]
    port = first.name
    rated = dataclasses.replace(  # rates and ratios need a second poll
        first, receive_bps=8e6, transmit_bps=8e6, receive_capacity_bps=1e9,
        transmit_capacity_bps=1e9, in_error_ratio=0.0, out_error_ratio=0.0,
        in_discard_ratio=0.0, out_discard_ratio=0.0,
    )  # fmt: skip
    router.status = dataclasses.replace(
        router.status,
        interfaces=(rated, *router.status.interfaces[1:]),
        wan=WanStatus((port,), port, 1),
        counter_rejections=(("counter_reset", 1),),
    )
    buckets = tuple(range(1, len(RTT_BUCKETS) + 2))
    target = TargetStatus(
        "dns", "192.0.2.1", "icmp", 5, 4, 0.01, 0.02, 0.03, 0.004, 50, 6, buckets, 1.0,
        "", "", (("timeout", 1),),
    )  # fmt: skip
    dns = DnsStatus(DnsReading("isp", "192.0.2.53", "A", 0.02, 0, ("192.0.2.80",), "udp"), 3, 1)
    phases = tuple((phase, 0.01) for phase in PHASES)
    page = HttpReading("pseb", "https://x.test/", "192.0.2.80", 200, phases, 512, 1.8e9)
    state.links["ptcl"] = LinkStatus(
        "ptcl", "PTCL", router.name, port, True, (target,), 1.7e9, 2.5, (dns,),
        (HttpStatus(page, 3, 0),),
    )  # fmt: skip
    tested = CapacityResult("ptcl", "PTCL", 1.7e9, "iperf3", 9e7, 1.8e7, 0.03, 1e8, 2e7, 2**27, "")
    state.capacity["ptcl"] = CapacityStatus("ptcl", tested, tested, (("iperf3", "pass", 1),), 2**27)
    losses = (
        Loss("wan", "ptcl", router.name, port, "isp", "probes lost"),
        Loss("device", "", "sw-down", "", "power", "silent on a cut"),
    )
    active = MappingProxyType({cause: True for cause in CAUSES})
    state.service = ServiceStatus(losses, active, MappingProxyType(dict.fromkeys(CAUSES, 1)))
    seconds = MappingProxyType(dict.fromkeys(LEDGER_CAUSES, 60.0))
    state.availability = AvailabilityTotals(seconds, MappingProxyType({"ptcl": seconds}))
    genset = state.devices["modbus-dse-gencomm"].name  # its start watch measured one start
    state.power = CentrePowerStatus(
        "generator",
        MappingProxyType(dict.fromkeys(SOURCES, 1.0)),
        MappingProxyType({genset: StartRecord(14.0, 1, None)}),
    )
    # what a box may lack (adjtimex, a NIC in a bare container) given, so every family shows
    host = read_host(["/"])
    state.host = dataclasses.replace(
        host, clock_synchronized=True, network=host.network or {"eth0": (1.0, 2.0)}
    )


def _families(state: AgentState) -> Exported:
    registry = build_registry(state)
    registry.register(RuntimeCollector(ReloadStatus(), MonotonicScheduler(), None))
    registry.register(ServiceCollector(state))
    registry.register(CentrePowerCollector(state))
    return exported(registry)


def exported(registry: CollectorRegistry) -> Exported:
    """Each family under its catalogue name: counters end _total, info families _info."""
    out: Exported = {}
    for family in registry.collect():
        suffix = {"counter": "_total", "info": "_info"}.get(family.type, "")
        name = family.name.removeprefix(PREFIX) + suffix
        labels = {label for s in family.samples for label in s.labels} - {"le"}
        type_, had, doc = out.get(name, (family.type, frozenset(), family.documentation))
        out[name] = (type_, had | labels, doc)
    return out


def agent_families() -> Exported:
    """Every family the agent's registries export for a state covering every kind and path."""
    state = AgentState("catalogue", "Catalogue", "test")
    _snmp_devices(state)

    async def polls() -> None:
        for case in CASES:
            await _modbus_device(state, case)
        for dump in DUMPS:
            await _nut_device(state, dump)

    asyncio.run(polls())
    _rare_states(state)
    return _families(state)


@pytest.fixture(scope="module")
def families() -> Exported:
    return agent_families()


def test_every_exported_family_is_catalogued_as_exported(families: Exported) -> None:
    entries = catalogue()
    missing = sorted(set(families) - set(entries))
    assert not missing, f"add to {CATALOGUE.name}: {missing}"
    for name, (type_, labels, doc) in families.items():
        entry = entries[name]
        assert entry["type"] == type_, name
        assert sorted(entry.get("labels", [])) == sorted(labels), name
        assert entry["help"] == doc, name


def test_every_catalogue_entry_is_exported(families: Exported) -> None:
    never = sorted(
        name for name, entry in catalogue().items()
        if name not in families and "only_when" not in entry
    )  # fmt: skip
    assert not never, f"never exported (remove, or say `only_when:`): {never}"


def test_catalogue_follows_prometheus_naming() -> None:
    for name, entry in catalogue().items():
        assert set(entry) <= {"type", "unit", "labels", "help", "only_when"}, name
        type_, unit = entry["type"], entry.get("unit")
        assert type_ in ("gauge", "counter", "info", "histogram"), name
        assert SNAKE.match(name) and not name.startswith(PREFIX), name
        assert name.endswith("_total") == (type_ == "counter"), f"{name}: _total is for counters"
        assert name.endswith("_info") == (type_ == "info"), f"{name}: _info is for info"
        assert not NOT_BASE.search(name), f"{name}: use base units"
        assert unit is None or unit in UNITS, f"{name}: {unit} is not a base unit"
        base = name.removesuffix("_total")
        named = next(
            (u for u in sorted(UNITS, key=len, reverse=True) if base.endswith(f"_{u}")), None
        )
        assert unit == named, f"{name}: the unit ({unit}) is the one the name ends with ({named})"
        if type_ == "histogram":
            assert unit is not None, f"{name}: a histogram has a unit"
        for label in entry.get("labels", []):
            assert SNAKE.match(label) and label not in ("le", "quantile"), f"{name}: {label}"
        doc = entry["help"]
        assert doc and "\n" not in doc and doc == doc.strip(), f"{name}: help is one line"


def readme_metrics() -> dict[str, set[str]]:
    """README's Metrics table: each metric named in a row's first cell -> that row's labels
    (a cell's '(...)' lists label values, 'a / b' alternatives for the row's metrics)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, set[str]] = {}
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("| `"):
            continue
        names = re.findall(r"`([^`]+)`", cells[0])
        listed = re.sub(r"\([^)]*\)", "", cells[1]).replace("/", ",").split(",")
        labels = {label.strip() for label in listed if label.strip()}
        for name in names:
            rows[name] = labels
    return rows


def test_readme_table_lists_the_catalogue() -> None:
    entries, rows = catalogue(), readme_metrics()
    assert sorted(set(entries) - set(rows)) == [], "catalogue entries missing from README"
    assert sorted(set(rows) - set(entries)) == [], "README metrics missing from the catalogue"
    for name, labels in rows.items():
        # a row's labels are its metrics' labels together
        row = {other for other, same in rows.items() if same is labels}
        together = {label for other in row for label in entries[other].get("labels", [])}
        assert labels == together, f"README labels of {name}"
