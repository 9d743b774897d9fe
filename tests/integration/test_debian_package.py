"""The .deb on this machine: install, run, upgrade, roll back, remove, purge.

packaging/build-deb.sh builds N and N+1 (debian_machine.debs); apt-get installs them here as
an operator would. Where systemd runs, the service must be active after install and upgrade;
where it does not (a container, this CI box), the maintainer scripts say what they skipped,
and those lines are counted: one start on install, one restart and no stop on upgrade, one
stop on removal.
"""

from __future__ import annotations

import grp
import hashlib
import re
import stat
import subprocess
import time
from pathlib import Path

from .conftest import require
from .debian_machine import (
    PING_RANGE,
    ROOT,
    apt,
    build,
    debs,
    dpkg_state,
    erozgar_account,
    machine,
    package_env,
)
from .deploy_stack import free_tcp_port, http_get

ETC = Path("/etc/erozgar-agent")
STATE = Path("/var/lib/erozgar-agent")
ENABLED = Path("/etc/systemd/system/multi-user.target.wants/erozgar-agent.service")
SYSTEMD = Path("/run/systemd/system").is_dir()


def agent(*args: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/usr/bin/erozgar-agent", *args], capture_output=True, text=True, env=package_env(),
        user=user, group=user, timeout=60,
    )  # fmt: skip


def timed_apt(*args: str) -> tuple[str, float]:
    started = time.monotonic()
    done = apt(*args)
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr, seconds


def service_actions(output: str) -> list[str]:
    """What the maintainer scripts did (or, without systemd, skipped) to the agent's unit."""
    if SYSTEMD:
        return []
    return re.findall(
        r"erozgar-agent: systemd is not running: (\w+) of erozgar-agent\.service", output
    )


def assert_service(output: str, expected: list[str]) -> None:
    if SYSTEMD:
        active = subprocess.run(["systemctl", "is-active", "erozgar-agent"], capture_output=True)
        assert active.returncode == (0 if expected != ["stop"] else 3)
    else:
        assert service_actions(output) == expected, output


def served_info(port: int) -> str:
    """erozgar_agent_info as served by the packaged agent run as `erozgar`."""
    argv = ["/usr/bin/erozgar-agent", "run", "--config", str(ETC / "agent.yml"),
            "--listen", f"127.0.0.1:{port}"]  # fmt: skip
    process = subprocess.Popen(
        argv, user="erozgar", group="erozgar", env=package_env(),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                body = http_get(f"http://127.0.0.1:{port}/metrics").decode()
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, "agent not up"
                time.sleep(0.2)
        interpreter = Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")[0]
        assert interpreter == b"/opt/erozgar-agent/venv/bin/python3"
    finally:
        process.terminate()
        log = process.communicate(timeout=15)[0]
    assert "Traceback" not in log, log
    return next(line for line in body.splitlines() if line.startswith("erozgar_agent_info{"))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_build_is_reproducible_and_lintian_clean(tmp_path: Path) -> None:
    built = debs()
    again = build(built.old, tmp_path)
    assert [sha(p) for p in again] == [sha(built.agent(built.old)), sha(built.shipper(built.old))]
    size_mb = built.agent(built.old).stat().st_size / 1e6
    print(f"\nbuild N and N+1: {built.build_seconds:.1f} s; erozgar-agent .deb {size_mb:.1f} MB")
    assert size_mb < 20
    lintian = subprocess.run(
        [require("lintian"), str(built.agent(built.old)), str(built.shipper(built.old))],
        capture_output=True, text=True,
    )  # fmt: skip
    tags = [line for line in lintian.stdout.splitlines() if re.match(r"^[EW]: ", line)]
    assert tags == ["W: erozgar-agent: no-manual-page [usr/bin/erozgar-agent]"], lintian.stdout


def test_install_upgrade_rollback_remove_purge(tmp_path: Path) -> None:
    built = debs()
    with machine(tmp_path):
        # A fresh box: one apt-get install, and the service is enabled and (re)started.
        output, install_s = timed_apt("install", str(built.agent(built.old)))
        assert_service(output, ["start"])
        assert agent("--version").stdout.strip() == f"erozgar-agent {built.old}"
        assert ENABLED.readlink() == Path("/lib/systemd/system/erozgar-agent.service")
        assert erozgar_account() == (True, True)
        low, high = map(int, PING_RANGE.read_text().split())
        assert low <= grp.getgrnam("erozgar").gr_gid <= high, "erozgar may not open ping sockets"
        modes = {
            p: stat.S_IMODE(p.stat().st_mode)
            for p in (ETC, ETC / "agent.yml", ETC / "secrets.env", STATE)
        }
        assert modes == {
            ETC: 0o750,
            ETC / "agent.yml": 0o640,
            ETC / "secrets.env": 0o600,
            STATE: 0o750,
        }
        assert (STATE.owner(), (ETC / "agent.yml").group()) == ("erozgar", "erozgar")
        verify = subprocess.run(
            [require("systemd-analyze"), "verify", "/lib/systemd/system/erozgar-agent.service"],
            capture_output=True, text=True,
        )  # fmt: skip
        assert verify.returncode == 0 and verify.stderr == "", verify.stderr

        # The default config: valid, harmless (no devices), and the agent runs on it.
        config = str(ETC / "agent.yml")
        validated = agent("validate", "--config", config, user="erozgar")
        counts = re.search(r": ok \(([^)]*)\)", validated.stdout)
        assert validated.returncode == 0 and counts, validated.stdout + validated.stderr
        assert set(re.findall(r"\d+", counts.group(1))) == {"0"}, counts.group(1)  # no devices
        checked = agent("check", "--config", config, user="erozgar")
        assert checked.returncode == 0, checked.stdout + checked.stderr
        info = served_info(free_tcp_port())
        assert f'version="{built.old}"' in info and 'site="UNCONFIGURED"' in info

        # The centre's own config, secrets and battery state.
        own = (ETC / "agent.yml").read_text().replace("UNCONFIGURED", "PKG-TEST") + "# edited\n"
        (ETC / "agent.yml").write_text(own)
        (ETC / "secrets.env").write_text("SNMP_COMMUNITY=not-public\n")
        ledger = STATE / "ups-rack.json"
        ledger.write_text('{"outages": [1]}')

        # N -> N+1: everything kept, one restart, no stop.
        output, upgrade_s = timed_apt("install", str(built.agent(built.new)))
        assert_service(output, ["restart"])
        assert agent("--version").stdout.strip() == f"erozgar-agent {built.new}"
        assert (ETC / "agent.yml").read_text() == own
        assert (ETC / "secrets.env").read_text() == "SNMP_COMMUNITY=not-public\n"
        assert stat.S_IMODE((ETC / "secrets.env").stat().st_mode) == 0o600
        assert ledger.read_text() == '{"outages": [1]}'
        assert ENABLED.is_symlink()
        info = served_info(free_tcp_port())
        assert f'version="{built.new}"' in info and 'site="PKG-TEST"' in info

        # The way back: N again, from its .deb.
        output, rollback_s = timed_apt("install", "--allow-downgrades", str(built.agent(built.old)))
        assert_service(output, ["restart"])
        assert agent("--version").stdout.strip() == f"erozgar-agent {built.old}"
        assert (ETC / "agent.yml").read_text() == own

        # The optional shipper: its unit and scrape config; removal takes them away.
        output, _ = timed_apt("install", str(built.shipper(built.old)))
        shipped = (ROOT / "deploy/vmagent/scrape.yml").read_text()
        assert (ETC / "vmagent-scrape.yml").read_text() == shipped
        assert Path("/lib/systemd/system/erozgar-vmagent.service").is_file()
        timed_apt("purge", "erozgar-agent-shipper")
        assert not Path("/lib/systemd/system/erozgar-vmagent.service").exists()
        assert (ETC / "agent.yml").read_text() == own

        # remove: stopped, the program gone, config, secrets and state kept.
        output, remove_s = timed_apt("remove", "erozgar-agent")
        assert_service(output, ["stop"])
        assert dpkg_state("erozgar-agent") == "config-files"
        assert not Path("/usr/bin/erozgar-agent").exists()
        assert not Path("/opt/erozgar-agent").exists()
        assert ENABLED.is_symlink()  # remembered: a reinstall keeps the admin's choice
        assert (ETC / "agent.yml").read_text() == own
        assert (ETC / "secrets.env").read_text() == "SNMP_COMMUNITY=not-public\n"
        assert ledger.read_text() == '{"outages": [1]}'

        # purge: config, secrets and state gone; the system user stays (Debian's custom).
        timed_apt("purge", "erozgar-agent")
        assert dpkg_state("erozgar-agent") == ""
        assert not ETC.exists() and not STATE.exists()
        assert not Path("/var/cache/erozgar-agent").exists()
        assert not ENABLED.is_symlink()
        assert not Path("/etc/systemd/system/erozgar-agent.service").is_symlink()  # no mask left
        assert erozgar_account() == (True, True)
        print(
            f"\napt-get install {install_s:.1f} s, upgrade {upgrade_s:.1f} s, "
            f"rollback {rollback_s:.1f} s, remove {remove_s:.1f} s"
        )
