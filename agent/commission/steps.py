"""What every kind's commissioning shares: is the host there at all (ICMP, else a TCP connect),
one poll through the daemon's own poller, the verdict on a failed poll with a hint that says
what to do, and the battery step of a UPS. No step prints a secret: messages come from the
collectors, which leave them out."""

from __future__ import annotations

import asyncio
import socket

from collectors.probe import ProbeTarget, probe
from collectors.readings import PollError, SnmpReading, UpsReading
from collectors.tcp import ConnectError, knock

from ..checks.power import PowerCheck
from ..poller import DevicePoller
from ..verdict import Step

# Seconds between the two polls whose counters give each port's traffic rate.
TRAFFIC_SAMPLE_SECONDS = 5.0
# Ports where a router or switch usually has something (or sends a reset): either proves the
# host is up when ICMP is filtered or not permitted.
_TCP_ALIVE_PORTS = (22, 23, 80, 443, 8291)


HINTS = {
    "timeout": "no answer in time: check the address and port, that the service is enabled on "
    "the device, the credentials, and any ACL or firewall between this box and the device",
    "refused": "nothing listens on that port: check the address and port, and that the "
    "protocol is enabled on the device (for Modbus TCP, on its network card)",
    "unreachable": "the address cannot be reached: check the IP address, cabling and VLAN",
    "auth": "the device rejected the credentials: check the user and keys in the config",
    "decode": "the answer could not be decoded: check the profile and word order",
    "exception_2": "the device refused those register addresses: check the profile matches "
    "this UPS model",
    "exception_11": "the gateway got no answer from that unit: check the unit id and the "
    "serial wiring behind the gateway",
    "permission": "the agent may not open the serial port: add the agent user to group dialout "
    "(usermod -aG dialout USER) and restart the agent",
    "busy": "another program holds the serial port: stop it (ModemManager, a terminal, "
    "a second agent)",
    "stale": "upsd runs but its driver has no data: check the UPS's USB cable and the NUT "
    "driver (upsdrvctl start)",
    "config": "the config does not match the device: see the detail",
}


def failure(step: str, exc: PollError) -> Step:
    hint = HINTS.get(exc.reason) or (
        "the device answered with a Modbus exception: see the detail"
        if exc.reason.startswith("exception_")
        else "see the detail; run with the daemon's log for more"
    )
    return Step(step, "FAIL", f"{exc.reason}: {exc}", hint)


async def poll_once(poller: DevicePoller) -> SnmpReading | UpsReading:
    """One poll through the daemon's own collector, cut off at the daemon's budget."""
    try:
        return await asyncio.wait_for(poller.collector.poll(), poller.budget_seconds)
    except TimeoutError:
        raise PollError(
            "timeout", f"no complete answer within {poller.budget_seconds:g} s"
        ) from None


async def poll(poller: DevicePoller) -> SnmpReading | UpsReading:
    try:
        return await poll_once(poller)
    finally:
        await poller.close()


def battery_step(name: str, reading: UpsReading) -> Step:
    status = PowerCheck(name).update(reading)
    charge = status.values.get("battery.charge")
    runtime = status.values.get("battery.runtime")
    seen = ", ".join(
        part
        for part in (
            f"charge {charge:.0f}%" if charge is not None else "",
            f"runtime {runtime / 60:.0f} min" if runtime is not None else "",
        )
        if part
    )
    if status.replace_battery:
        return Step(
            "battery",
            "FAIL",
            f"UPS asks for a new battery; {seen}",
            "replace the battery before the next load-shedding",
        )
    if status.on_battery:
        return Step(
            "battery",
            "WARN",
            f"on battery now; {seen}",
            "mains is off or the input is out of range: check the UPS input",
        )
    if status.state in _STATE_STEPS:
        result, what, hint = _STATE_STEPS[status.state]
        return Step("battery", result, f"{what}; {seen}", hint)
    return Step("battery", "PASS", f"on mains; {seen}")


# What the UPS is doing when it is neither on mains nor on battery for a cut (agent/checks/power.py
# power_state): a self-test is no fault, but its figures are not the on-mains ones.
_STATE_STEPS = {
    "self_test": ("WARN", "battery self-test running", "run check again when the test is over"),
    "calibration": (
        "WARN",
        "runtime calibration running",
        "run check again when the calibration is over (it discharges the battery)",
    ),
    "bypass": (
        "WARN",
        "on bypass: the load runs on raw mains, unprotected",
        "take the UPS off bypass (front panel or its network card); if it went there by "
        "itself, it reports a fault or overload: see its log",
    ),
    "off": (
        "FAIL",
        "UPS output is off: the load has no power from it",
        "switch the UPS output on (front panel or its network card)",
    ),
}


async def _tcp_answers(address: str, port: int, timeout: float) -> bool:
    """True when the host accepts or refuses a TCP connection: either way it is there."""
    try:
        await knock(address, port, timeout)
    except ConnectError as exc:
        return exc.reason == "refused"
    return True


async def host_reachable(host: str) -> tuple[Step, bool]:
    """Step "host reachable" and whether it is: ICMP echo, else a TCP connect to common ports."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, None, family=socket.AF_INET)
    except socket.gaierror as exc:
        step = Step(
            "host reachable", "FAIL", f"cannot resolve {host}: {exc.strerror}",
            "use the device's IP address, or fix DNS on this box",
        )  # fmt: skip
        return step, False
    address = str(infos[0][4][0])
    try:
        reading = await probe(ProbeTarget("check", address), count=2, spacing=0.2, timeout=1.0)
    except PollError:  # ICMP not permitted for this user: TCP says as much
        reading = None
    if reading is not None and reading.received:
        rtt = min(r for r in reading.rtts if r is not None)
        return Step(
            "host reachable", "PASS", f"{address} answers ping in {rtt * 1000:.1f} ms"
        ), True
    answers = await asyncio.gather(*(_tcp_answers(address, p, 1.0) for p in _TCP_ALIVE_PORTS))
    if any(answers):
        return Step("host reachable", "PASS", f"{address} answers TCP (ping filtered)"), True
    note = f" ({reading.note})" if reading is not None and reading.note else ""
    step = Step(
        "host reachable", "WARN", f"{address}: no answer to ping or TCP{note}",
        "the device may just filter ping; if the next step fails too, check the IP address, "
        "the cable and the VLAN between this box and the device",
    )  # fmt: skip
    return step, False


async def tcp_connect_step(host: str, port: int, timeout: float) -> Step:
    where = f"{host}:{port}"
    try:
        await knock(host, port, timeout)
    except ConnectError as exc:
        if exc.reason == "refused":
            return Step(
                "tcp connect", "FAIL", f"{where} refused the connection",
                "nothing listens there: check the address and port, and that Modbus TCP is "
                "enabled on the UPS's network card or gateway",
            )  # fmt: skip
        firewall = ", and any firewall on the way" if exc.reason == "timeout" else ""
        return Step(
            "tcp connect", "FAIL", f"{where}: {exc}",
            f"check the IP address, cabling and VLAN{firewall}",
        )  # fmt: skip
    return Step("tcp connect", "PASS", f"{where} accepts connections")
