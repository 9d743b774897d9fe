"""Command line: run, check, validate, demo. Exit codes are a contract for users and tests:
0 ok, 1 a check failed (or the daemon could not start), 2 the config is invalid."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from . import __version__
from .config import Config, ConfigError, load_config, split_host_port

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def _setup_logging(verbose: bool) -> None:
    # Under systemd (JOURNAL_STREAM set) journald stamps the time itself.
    stamp = "" if os.environ.get("JOURNAL_STREAM") else "%(asctime)s "
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format=f"{stamp}%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Libraries log every failed connect; the pollers already say it once per change of state.
    for noisy in ("apscheduler", "pymodbus", "pysnmp"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.CRITICAL)


def _load(path: str) -> Config | None:
    try:
        return load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None


def _listen(value: str | None, config: Config) -> tuple[str, int] | None:
    if value is None:
        return config.listen_host_port
    try:
        return split_host_port(value, 9877)
    except ValueError as exc:
        print(f"--listen: {exc}", file=sys.stderr)
        return None


def _cmd_run(args: argparse.Namespace) -> int:
    from .daemon import run_until_signal

    config = _load(args.config)
    if config is None:
        return EXIT_CONFIG
    listen = _listen(args.listen, config)
    if listen is None:
        return EXIT_CONFIG
    try:
        asyncio.run(run_until_signal(config, listen))
    except OSError as exc:
        print(
            f"cannot listen on {listen[0]}:{listen[1]}: {exc.strerror}; "
            "change listen: in the config or pass --listen",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return EXIT_OK


def _cmd_check(args: argparse.Namespace) -> int:
    from .healthcheck import render_json, render_table, run_checks

    config = _load(args.config)
    if config is None:
        return EXIT_CONFIG
    if not args.json:
        count = len(config.snmp) + len(config.modbus)
        print(f"checking {count} devices of site {config.site.id} ...", file=sys.stderr)
    verdicts = asyncio.run(run_checks(config))
    print(render_json(verdicts) if args.json else render_table(verdicts))
    return EXIT_FAILED if any(v.status == "FAIL" for v in verdicts) else EXIT_OK


def _cmd_validate(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return EXIT_CONFIG
    print(f"{args.config}: ok ({len(config.snmp)} SNMP, {len(config.modbus)} Modbus devices)")
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    try:
        listen = split_host_port(args.listen, 9877)
    except ValueError as exc:
        print(f"--listen: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        asyncio.run(
            run_demo(listen, outage_every=args.outage_every, outage_length=args.outage_length)
        )
    except OSError as exc:
        print(
            f"cannot listen on {listen[0]}:{listen[1]}: {exc.strerror}; pass --listen",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return EXIT_OK


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="erozgar-agent", description=__doc__.splitlines()[0])
    top.add_argument("--version", action="version", version=f"erozgar-agent {__version__}")
    top.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = top.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the daemon")
    run.add_argument("--config", required=True, help="YAML config file")
    run.add_argument("--listen", help="HOST:PORT for /metrics (default: listen: in the config)")
    run.set_defaults(func=_cmd_run)

    check = sub.add_parser("check", help="poll every device once and give a verdict")
    check.add_argument("--config", required=True)
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.set_defaults(func=_cmd_check)

    validate = sub.add_parser("validate", help="check the config file only")
    validate.add_argument("--config", required=True)
    validate.set_defaults(func=_cmd_validate)

    demo = sub.add_parser("demo", help="a simulated centre on loopback, polled by the real agent")
    demo.add_argument("--listen", default="127.0.0.1:9877")
    demo.add_argument(
        "--outage-every",
        type=float,
        default=180,
        metavar="SECONDS",
        help="mains cut period of the simulated UPS (default 180)",
    )
    demo.add_argument(
        "--outage-length",
        type=float,
        default=60,
        metavar="SECONDS",
        help="length of each simulated cut (default 60)",
    )
    demo.set_defaults(func=_cmd_demo)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    _setup_logging(args.verbose)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
