"""Serial-port failures become reasons with a hint; config keys for transports name the key."""

from __future__ import annotations

import asyncio
import errno

import pytest
import serial

from agent.config import ConfigError, parse_config
from collectors.modbus.transport import Gateway, Link
from collectors.readings import PollError


@pytest.mark.parametrize(
    ("error", "reason", "text"),
    [
        (serial.SerialException(errno.EACCES, "denied"), "permission", "group dialout"),
        (serial.SerialException("Could not exclusively lock port"), "busy", "another program"),
    ],
)
def test_serial_open_failures_are_classified(
    monkeypatch: pytest.MonkeyPatch, error: Exception, reason: str, text: str
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(serial, "serial_for_url", refuse)
    gateway = Gateway(Link("rtu", "/dev/ttyUSB0"), timeout=1, retries=0)
    found = gateway._serial_error("ups unit 1")
    assert found.reason == reason
    assert text in str(found)


def test_gateway_join_keeps_the_slowest_settings() -> None:
    gateway = Gateway(Link("rtu", "/dev/ttyUSB0"), timeout=1, retries=0, pause=0.05)
    gateway.join(timeout=3, retries=2, pause=0.02)
    assert (gateway.timeout, gateway.retries, gateway.pause) == (3, 2, 0.05)


def _problems(modbus: list[dict[str, object]]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config({"site": {"id": "s"}, "modbus": modbus}, "c")
    return caught.value.problems


def test_rtu_needs_a_device_path() -> None:
    assert _problems([{"name": "u", "address": "10.0.0.5", "transport": "rtu"}]) == [
        "c: modbus[0].address: transport rtu needs a serial device path such as /dev/ttyUSB0, "
        "not '10.0.0.5'"
    ]


def test_tcp_needs_host_port() -> None:
    (problem,) = _problems([{"name": "u", "address": "/dev/ttyUSB0"}])
    assert problem.startswith("c: modbus[0].address: transport tcp needs host[:port]")


def test_serial_settings_are_checked() -> None:
    problems = _problems(
        [{"name": "u", "address": "/dev/ttyS0", "transport": "rtu", "parity": "X", "stopbits": 3}]
    )
    assert [p.split(":")[1].strip() for p in problems] == ["modbus[0].parity", "modbus[0].stopbits"]


def test_devices_on_one_port_must_agree() -> None:
    (problem,) = _problems(
        [
            {"name": "a", "address": "/dev/ttyUSB0", "transport": "rtu"},
            {"name": "b", "address": "/dev/ttyUSB0", "transport": "rtu", "baudrate": 19200},
        ]
    )
    assert problem.startswith("c: modbus[1].transport: modbus[0] (a) reaches the same gateway")


def test_request_pause_defaults_by_transport() -> None:
    config = parse_config(
        {
            "site": {"id": "s"},
            "modbus": [
                {"name": "a", "address": "/dev/ttyUSB0", "transport": "rtu", "unit": 1},
                {"name": "b", "address": "10.0.0.9"},
            ],
        }
    )
    rtu, tcp = config.modbus
    assert (rtu.pause, tcp.pause) == (0.05, 0.0)
    assert rtu.link == Link("rtu", "/dev/ttyUSB0", 0, 9600, "N", 1)


def test_backoff_doubles_and_fails_fast_in_between() -> None:
    async def go() -> list[str]:
        gateway = Gateway(Link("tcp", "127.0.0.1", 1), timeout=0.5, retries=0, backoff_min=5)
        messages = []
        for _ in range(2):
            try:
                await gateway.read("holding", 0, 1, unit=1, where="u")
            except PollError as exc:
                messages.append(f"{exc.reason}: {exc}")
        return messages

    first, second = asyncio.run(go())
    assert first.startswith("refused: u: connection refused")
    assert second.startswith("refused: u: connection refused")
    assert second.endswith("next connect attempt in 5 s")
