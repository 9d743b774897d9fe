"""Command line: run, check, speedtest, validate, demo, report. Exit codes are a contract for
users and tests: 0 ok, 1 a check failed (or the daemon could not start), 2 the config is
invalid."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from collectors.packaged import use_site_dir

from . import __version__
from .config import Config, ConfigError, load_config, split_host_port
from .secrets import warn_if_readable_by_others

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
    for noisy in ("pymodbus", "pysnmp"):  # pysnmp: the demo's simulated router
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.CRITICAL)


def _load(path: str) -> Config | None:
    try:
        config = load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None
    warn_if_readable_by_others(path, config)
    use_site_dir(config.profile_dir)
    return config


def _listen(value: str | None, config: Config) -> tuple[str, int] | None:
    if value is None:
        return config.listen_host_port
    try:
        return split_host_port(value, 9877)
    except ValueError as exc:
        print(f"--listen: {exc}", file=sys.stderr)
        return None


def _cmd_run(args: argparse.Namespace) -> int:
    from exporters.web_config import WebConfigError

    from .daemon import run_until_signal

    config = _load(args.config)
    if config is None:
        return EXIT_CONFIG
    listen = _listen(args.listen, config)
    if listen is None:
        return EXIT_CONFIG
    try:
        asyncio.run(
            run_until_signal(
                config, listen, config_path=args.config, web_config_file=args.web_config_file
            )
        )
    except WebConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    except OSError as exc:
        print(
            f"cannot listen on {listen[0]}:{listen[1]}: {exc.strerror}; "
            "change listen: in the config or pass --listen",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return EXIT_OK


def _cmd_check(args: argparse.Namespace) -> int:
    from .commission.healthcheck import CheckProgress, render_json, render_table, run_checks

    config = _load(args.config)
    if config is None:
        return EXIT_CONFIG
    progress = CheckProgress(sys.stderr, config)
    verdicts = asyncio.run(run_checks(config, progress.finished))
    progress.close()
    print(render_json(verdicts) if args.json else render_table(verdicts))
    return EXIT_FAILED if any(v.status == "FAIL" for v in verdicts) else EXIT_OK


def _cmd_speedtest(args: argparse.Namespace) -> int:
    from .checks.capacity import contract_bps, describe, run_test

    config = _load(args.config)
    if config is None:
        return EXIT_CONFIG
    links = [link for link in config.links if link.capacity_test is not None]
    if args.link is not None:
        links = [link for link in links if link.name == args.link]
    if not links:
        tested = ", ".join(link.name for link in config.links if link.capacity_test) or "none"
        which = f"link {args.link!r}" if args.link else "no link"
        print(
            f"{args.config}: {which} has a capacity_test: block (links with one: {tested})",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    failed = False
    for link in links:
        test = link.capacity_test
        assert test is not None

        def progress(phase: str, name: str = link.name) -> None:
            print(f"link {name}: {phase} ...", file=sys.stderr, flush=True)

        result = asyncio.run(
            run_test(
                link, contract_bps(config, link), byte_cap=test.max_bytes_per_day,
                progress=progress,
            )
        )  # fmt: skip
        print(describe(result, test.contract_share), flush=True)
        failed = failed or result.verdict(test.contract_share) != "pass"
    return EXIT_FAILED if failed else EXIT_OK


def _cmd_discover(args: argparse.Namespace) -> int:
    import json

    from .commission.discover import (
        V3_AUTH_VARIABLE,
        V3_PRIV_VARIABLE,
        ProgressBar,
        ScanError,
        V3User,
        as_json,
        discover,
        hosts,
        render_snippet,
    )

    try:
        addresses = hosts(args.cidr, args.force)
    except ScanError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    v3_users = []
    if args.v3_user:
        auth = os.environ.get(V3_AUTH_VARIABLE) if args.v3_auth_protocol != "none" else None
        priv = os.environ.get(V3_PRIV_VARIABLE) if args.v3_priv_protocol != "none" else None
        if (args.v3_auth_protocol != "none" and not auth) or (
            args.v3_priv_protocol != "none" and not priv
        ):
            print(
                f"--v3-user: set {V3_AUTH_VARIABLE} and {V3_PRIV_VARIABLE} in the environment "
                "(or pass --v3-auth-protocol none / --v3-priv-protocol none)",
                file=sys.stderr,
            )
            return EXIT_CONFIG
        v3_users = [
            V3User(
                user,
                None if auth is None else args.v3_auth_protocol,
                auth,
                None if priv is None else args.v3_priv_protocol,
                priv,
            )
            for user in args.v3_user
        ]
    bar = ProgressBar(sys.stderr, len(addresses))
    found = asyncio.run(
        discover(
            addresses,
            args.community,
            v3_users=v3_users,
            snmp_port=args.snmp_port,
            modbus_port=args.modbus_port,
            timeout=args.timeout,
            concurrency=args.concurrency,
            rate=args.rate,
            on_address=bar.step,
        )
    )
    bar.close()
    if args.json:
        print(json.dumps(as_json(found), indent=2))
    else:
        print(render_snippet(found, args.cidr), end="")
    return EXIT_OK if found else EXIT_FAILED


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
            run_demo(
                listen,
                outage_every=args.outage_every,
                outage_length=args.outage_length,
                isp_outage_every=args.isp_outage_every,
                isp_outage_length=args.isp_outage_length,
            )
        )
    except OSError as exc:
        print(
            f"cannot listen on {listen[0]}:{listen[1]}: {exc.strerror}; pass --listen",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    import time
    from datetime import datetime
    from pathlib import Path

    from .ledger import LEDGER_FILE, Ledger
    from .report import from_ledger, render

    config = _load(args.config)
    if config is None:
        return EXIT_CONFIG
    year, month = args.month
    tz = args.tz or datetime.now().astimezone().tzinfo
    ledger = Ledger(Path(config.state_dir) / LEDGER_FILE)
    links = {link.name: link.isp for link in config.links}
    report = from_ledger(ledger, config.site.id, links, year, month, tz, time.time())
    page = render(report)
    if args.out is None:
        sys.stdout.write(page)
    else:
        try:
            Path(args.out).write_text(page, encoding="utf-8")
        except OSError as exc:
            print(f"--out: {args.out}: {exc.strerror}", file=sys.stderr)
            return EXIT_FAILED
    for link in report.links:
        isp = link.total("isp") / 60
        print(
            f"{link.link}: {link.availability() * 100:.2f} % available, "
            f"{isp:.1f} min lost to the ISP",
            file=sys.stderr,
        )
    if not links:
        print("no links: in the config; the report lists outages only", file=sys.stderr)
    return EXIT_OK


def parser() -> argparse.ArgumentParser:
    from .report import parse_month, parse_zone

    top = argparse.ArgumentParser(prog="erozgar-agent", description=__doc__.splitlines()[0])
    top.add_argument("--version", action="version", version=f"erozgar-agent {__version__}")
    top.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = top.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the daemon")
    run.add_argument("--config", required=True, help="YAML config file")
    run.add_argument("--listen", help="HOST:PORT for /metrics (default: listen: in the config)")
    run.add_argument(
        "--web.config.file",
        dest="web_config_file",
        metavar="FILE",
        help="TLS, basic auth and IP allow-list for the endpoint (exporter-toolkit format; "
        "default: web_config_file: in the config)",
    )
    run.set_defaults(func=_cmd_run)

    check = sub.add_parser("check", help="poll every device once and give a verdict")
    check.add_argument("--config", required=True)
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.set_defaults(func=_cmd_check)

    speedtest = sub.add_parser(
        "speedtest", help="run the links' capacity tests now and judge them against the contract"
    )
    speedtest.add_argument("--config", required=True)
    speedtest.add_argument("--link", help="only this link (default: every link with a test)")
    speedtest.set_defaults(func=_cmd_speedtest)

    discover = sub.add_parser(
        "discover", help="find SNMP and Modbus TCP devices on a subnet; print a config snippet"
    )
    discover.add_argument("cidr", help="subnet to scan, e.g. 192.168.1.0/24 (at most a /22)")
    discover.add_argument(
        "--community",
        action="append",
        default=[],
        help="SNMP v1/v2c community to try (repeat for several; none: no SNMP scan)",
    )
    discover.add_argument(
        "--v3-user",
        action="append",
        default=[],
        metavar="USER",
        help="SNMPv3 user to try; keys from $SNMP_V3_AUTH_PASSWORD and $SNMP_V3_PRIV_PASSWORD",
    )
    discover.add_argument(
        "--v3-auth-protocol",
        default="SHA",
        choices=["none", "MD5", "SHA", "SHA-224", "SHA-256", "SHA-384", "SHA-512"],
    )
    discover.add_argument(
        "--v3-priv-protocol",
        default="AES",
        choices=["none", "DES", "AES", "AES-128", "AES-192", "AES-256", "AES-192C", "AES-256C"],
    )
    discover.add_argument("--snmp-port", type=int, default=161, metavar="PORT")
    discover.add_argument("--modbus-port", type=int, default=502, metavar="PORT")
    discover.add_argument("--timeout", type=float, default=1.0, metavar="SECONDS")
    discover.add_argument("--concurrency", type=int, default=64, help="addresses at once")
    discover.add_argument("--rate", type=float, default=200, help="new addresses per second")
    discover.add_argument("--json", action="store_true", help="machine-readable output")
    discover.add_argument("--force", action="store_true", help="allow more than a /22")
    discover.set_defaults(func=_cmd_discover)

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
    demo.add_argument(
        "--isp-outage-every",
        type=float,
        default=300,
        metavar="SECONDS",
        help="period of the simulated ISP line drops (default 300)",
    )
    demo.add_argument(
        "--isp-outage-length",
        type=float,
        default=40,
        metavar="SECONDS",
        help="length of each line drop (default 40; at least 20 s to go on record)",
    )
    demo.set_defaults(func=_cmd_demo)

    report = sub.add_parser(
        "report", help="the month's availability and capacity report from the outage ledger"
    )
    report.add_argument("--config", required=True)
    report.add_argument("--month", required=True, type=parse_month, metavar="YYYY-MM")
    report.add_argument("--out", metavar="FILE", help="HTML file to write (default: stdout)")
    report.add_argument(
        "--tz", type=parse_zone, metavar="ZONE", help="time zone of the days (default: the box's)"
    )
    report.set_defaults(func=_cmd_report)
    return top


def _skip_optional_imports() -> None:
    """An optional import the agent never needs, part of 13 MB of RSS and most of a second at
    start on a small box (bench/RESULTS.md): pydantic's scan of every installed package's
    entry points for plugins. (pysnmp's MIB compiler, the other part, is no longer imported:
    SNMPv3 goes through collectors/snmp/usm.py.)"""
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "1")


def main(argv: list[str] | None = None) -> int:
    _skip_optional_imports()
    args = parser().parse_args(argv)
    _setup_logging(args.verbose)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
