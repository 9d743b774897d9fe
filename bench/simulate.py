"""The simulated devices of the benchmarks, in their own process (so the agent's /proc figures
are its own). Writes the agent's device config to `--ready FILE` once every device listens, then
runs until SIGTERM.

    python bench/simulate.py --ready R.json centre [--switches 6] [--slow-seconds 0]
    python bench/simulate.py --ready R.json accuracy      # SIGUSR1: every router restarts

centre: 2 routers (8 ports), `--switches` access switches (48 ports + 2 uplinks), 3 APC UPS on
Modbus/TCP, a TCP listener for the link probes; `--slow-seconds S` adds a router that answers
S seconds late. accuracy: a 1 Gb/s port near line rate on 32-bit counters (wraps every ~36 s)
and 64-bit ports, constant known rates.

`--control SOCKET` (centre): faults switched at run time by one-line JSON commands on a Unix
socket (bench/soak.py), see FaultControl.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simulators.modbus_server import RegisterSource
from simulators.scenarios import gateway_reboot, ups_silent
from simulators.snmp_router import SimInterface, SimulatedRouter
from simulators.ups import SimulatedUps

COMMUNITY = "bench"
# The accuracy run's ports: name -> (speed, receive bit/s, transmit bit/s)
ACCURACY_PORTS = {
    "wan32": (1e9, 950e6, 910e6),  # 32-bit: 2^32 bytes at 950 Mb/s is 36.2 s
    "lan64": (1e9, 400e6, 123.4e6),
    "slow64": (100e6, 2.5e6, 0.75e6),
}


async def centre(args: argparse.Namespace) -> tuple[dict[str, Any], list[Any]]:
    running: list[Any] = []
    snmp: list[dict[str, Any]] = []
    for n in range(2):
        router = SimulatedRouter(
            f"router-{n + 1}",
            [SimInterface(f"ether{p}", 1e9, 5e6 * p, 1e6 * p) for p in range(1, 9)],
            community=COMMUNITY,
        )
        host, port = await router.start(f"127.0.0.{n + 1}", 0)
        running.append(router)
        snmp.append(
            {
                "name": router.name,
                "address": f"{host}:{port}",
                "community": COMMUNITY,
                "interfaces": [
                    {"name": "ether1", "role": "wan", "capacity_down_mbps": 100,
                     "capacity_up_mbps": 20},
                    {"name": "ether2", "role": "uplink"},
                ],
            }
        )  # fmt: skip
    for n in range(args.switches):
        switch = SimulatedRouter(
            f"switch-{n + 1}",
            [SimInterface(f"ge-0/0/{p}", 1e9, 1e5 * p, 2e5 * p) for p in range(1, 49)]
            + [SimInterface(f"xe-0/1/{p}", 10e9, 5e7, 5e7) for p in range(1, 3)],
            community=COMMUNITY,
        )
        host, port = await switch.start(f"127.0.0.{3 + n % 200}", 0)
        running.append(switch)
        # the example config's interval for access switches
        snmp.append({"name": switch.name, "address": f"{host}:{port}",
                     "community": COMMUNITY, "interval": 30})  # fmt: skip
    if args.slow_seconds:
        slow = SimulatedRouter(
            "slow-router",
            [SimInterface(f"ether{p}", 1e9, 1e6, 1e6) for p in range(1, 5)],
            community=COMMUNITY,
        )
        slow.delay = args.slow_seconds
        host, port = await slow.start("127.0.0.250", 0)
        running.append(slow)
        snmp.append({"name": "slow-router", "address": f"{host}:{port}", "community": COMMUNITY,
                     "interval": 30, "timeout": args.slow_seconds + 2, "retries": 0})  # fmt: skip
    modbus = []
    upses = {}
    for n in range(3):
        ups = SimulatedUps("apc-smart-ups", serial=f"AS00000000{n}")
        host, port = await ups.start(f"127.0.0.{n + 1}", 0)
        running.append(ups)
        upses[f"ups-{n + 1}"] = ups
        modbus.append({"name": f"ups-{n + 1}", "address": f"{host}:{port}"})
    if args.control is not None:
        routers = {r.name: r for r in running if isinstance(r, SimulatedRouter)}
        running.append(await FaultControl(routers, upses).serve(args.control))
    # A TCP target for the probes: an open port (a refused one would count as an answer too).
    server = await asyncio.start_server(_close_at_once, "127.0.0.1", 0)
    running.append(server)
    tcp_port = server.sockets[0].getsockname()[1]
    links = [
        {
            "name": f"isp-{n + 1}",
            "device": f"router-{n + 1}",
            "interface": "ether1",
            "targets": [
                {"name": "gateway", "address": f"127.0.0.{n + 1}"},
                {"name": "dns", "address": "127.0.0.53"},
                {"name": "web", "address": "127.0.0.1", "tcp_port": tcp_port},
            ],
        }
        for n in range(2)
    ]
    return {"snmp": snmp, "modbus": modbus, "links": links}, running


class FaultControl:
    """The centre's fault knobs, one JSON line per command, answered "ok" or "error: ...":

        {"device": "switch-3", "fault": "silent", "on": true}
        {"device": "ups-2", "fault": "slow", "on": true, "seconds": 1.5}

    SNMP: silent, slow, restart (sysUpTime and counters from 0; "on" only). Modbus: silent,
    slow (each answer late), reset (half an answer, then RST), exception (code 2 for the
    profile's first block), gateway_restart (nothing listens until "on": false).
    """

    SNMP = ("silent", "slow", "restart")
    MODBUS = ("silent", "slow", "reset", "exception", "gateway_restart")

    def __init__(self, routers: dict[str, SimulatedRouter], upses: dict[str, SimulatedUps]):
        self.routers, self.upses = routers, upses
        self._silenced: dict[str, contextlib.ExitStack] = {}
        self._reboots: dict[str, asyncio.Task[None]] = {}

    async def serve(self, path: Path) -> asyncio.Server:
        return await asyncio.start_unix_server(self._client, str(path))

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    command = json.loads(line)
                    await self.apply(
                        command["device"], command["fault"], bool(command["on"]),
                        float(command.get("seconds", 0.0)),
                    )  # fmt: skip
                    answer = "ok"
                except (ValueError, KeyError, TypeError, OSError) as exc:
                    answer = f"error: {exc!r}"
                writer.write(answer.encode() + b"\n")
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def apply(self, device: str, fault: str, on: bool, seconds: float) -> None:
        if device in self.routers and fault in self.SNMP:
            router = self.routers[device]
            if fault == "silent":
                router.answering = not on
            elif fault == "slow":
                router.delay = seconds if on else 0.0
            elif on:
                router.restart()
        elif device in self.upses and fault in self.MODBUS:
            await self._modbus(device, self.upses[device], fault, on, seconds)
        else:
            raise ValueError(f"no fault {fault!r} for device {device!r}")

    async def _modbus(
        self, name: str, ups: SimulatedUps, fault: str, on: bool, seconds: float
    ) -> None:
        if fault == "silent":
            if on:
                self._silenced[name] = stack = contextlib.ExitStack()
                stack.enter_context(ups_silent(ups))
            else:
                self._silenced.pop(name).close()
        elif fault == "slow":
            ups.server.delay = seconds if on else 0.0
        elif fault == "reset":
            ups.server.reset_mid_response = on
        elif fault == "exception":
            ups.server.register_source = _first_block_refused(ups) if on else ups.register_source
        elif on:  # gateway_restart: down for at most `seconds`; "off" waits until it listens
            self._reboots[name] = asyncio.create_task(gateway_reboot(ups, seconds))
        else:
            await self._reboots.pop(name)


def _first_block_refused(ups: SimulatedUps) -> RegisterSource:
    first = ups.profile.blocks[0].address

    def source(unit: int, function: int, address: int, count: int) -> list[int] | int | None:
        return 2 if address == first else ups.register_source(unit, function, address, count)

    return source


async def _close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


async def accuracy(args: argparse.Namespace) -> tuple[dict[str, Any], list[Any]]:
    """One 32-bit router (old counters) and one 64-bit router with 48 busy LAN ports, so a
    poll spans several GETBULK answers and real decoding work."""
    old = SimulatedRouter(
        "old-router",
        [SimInterface("wan32", *ACCURACY_PORTS["wan32"])],
        community=COMMUNITY,
        hc_counters=False,
        uptime=3600,
    )
    new = SimulatedRouter(
        "new-router",
        [SimInterface(name, *ACCURACY_PORTS[name]) for name in ("lan64", "slow64")]
        + [SimInterface(f"ge{p}", 1e9, 1e6 * p, 1e6 * p) for p in range(1, 47)],
        community=COMMUNITY,
        uptime=3600,
    )
    snmp = []
    for n, router in enumerate((old, new)):
        host, port = await router.start(f"127.0.0.{n + 1}", 0)
        snmp.append({"name": router.name, "address": f"{host}:{port}", "community": COMMUNITY,
                     "interval": args.interval})  # fmt: skip

    def restart() -> None:
        for router in (old, new):
            router.restart()
        print("restarted every router", flush=True)

    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, restart)
    truth = {name: [rx / 8, tx / 8] for name, (_, rx, tx) in ACCURACY_PORTS.items()}
    return {"snmp": snmp, "truth_bytes_per_second": truth}, [old, new]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ready", type=Path, required=True)
    sub = parser.add_subparsers(dest="mode", required=True)
    c = sub.add_parser("centre")
    c.add_argument("--switches", type=int, default=6)
    c.add_argument("--slow-seconds", type=float, default=0.0)
    c.add_argument("--control", type=Path, help="Unix socket for fault commands (FaultControl)")
    a = sub.add_parser("accuracy")
    a.add_argument("--interval", type=float, default=10)
    args = parser.parse_args()
    build = {"centre": centre, "accuracy": accuracy}[args.mode]
    config, running = await build(args)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    partial = args.ready.with_suffix(".tmp")
    partial.write_text(json.dumps(config))
    partial.rename(args.ready)  # the reader never sees half a file
    await stopped.wait()
    for thing in running:
        if isinstance(thing, asyncio.Server):
            thing.close()
        else:
            await thing.stop()


if __name__ == "__main__":
    asyncio.run(main())
