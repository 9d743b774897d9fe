"""The .deb on this machine: install, run, upgrade, roll back, remove, purge; by apt, then by
the Ansible rollout. One file, so one test worker builds the packages once.

packaging/build-deb.sh builds N and N+1 (debian_machine.debs); apt-get installs them here as
an operator would. Where systemd runs, the service must be active after install and upgrade;
where it does not (a container, this CI box), the maintainer scripts say what they skipped,
and those lines are counted: one start on install, one restart and no stop on upgrade, one
stop on removal.

deploy/ansible's playbook runs against this machine (ansible_connection=local): centres from
a site inventory CSV all point at this box; it takes it from N to N+1 with the centre's
templated config and secrets, stops a wave when a centre's `erozgar-agent check` says FAIL,
and rolls back to N by pinning the version. ansible-core and ansible-lint come from
deploy/ansible/requirements.txt, in their own venv (deploy/bootstrap.sh test).
"""

from __future__ import annotations

import grp
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

from .conftest import missing, require
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


# The rollout: deploy/ansible.
ANSIBLE = ROOT / "deploy" / "ansible"
VENV = Path(os.environ.get("EROZGAR_ANSIBLE_VENV", "/opt/erozgar-ansible-venv"))
SECRET = "c0mmunity-not-for-logs"
PASSWORD = "remote-write-not-for-logs"
WRITE_URL = "https://metrics.example.pk/insert/0/prometheus/api/v1/write"


def tool(name: str) -> str:
    path = VENV / "bin" / name
    if not path.exists():
        missing(f"{path} not found: deploy/bootstrap.sh test")
    return str(path)


def ansible_env(sites_csv: Path | None = None) -> dict[str, str]:
    env = package_env() | {"PATH": f"{VENV / 'bin'}:{os.environ['PATH']}", "ANSIBLE_NOCOLOR": "1"}
    return env | ({"EROZGAR_SITES_CSV": str(sites_csv)} if sites_csv else {})


def playbook(
    tmp_path: Path, hosts: dict[str, dict], *args: str
) -> tuple[subprocess.CompletedProcess[str], float]:
    """rollout.yml for `hosts` (site id -> host vars), all of them this machine."""
    sites = tmp_path / "sites.csv"
    sites.write_text(
        "site,site_name,region,admin_email\n"
        + "".join(f"{site},Centre {site},lab,admin@example.pk\n" for site in hosts)
    )
    local = tmp_path / "local.yml"
    local.write_text(yaml.safe_dump({"all": {"hosts": hosts, "vars": {
        "ansible_connection": "local", "ansible_become": False,
        "erozgar_agent_deb_dir": str(debs().directory),
    }}}))  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(
        [tool("ansible-playbook"), "-i", "inventory/sites.py", "-i", str(local), "rollout.yml",
         *args],
        cwd=ANSIBLE, capture_output=True, text=True, env=ansible_env(sites), timeout=600,
    )  # fmt: skip
    return done, time.monotonic() - started


def recap(output: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP: host -> {ok, changed, failed, ...}."""
    found = {}
    for host, counts in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", output, re.MULTILINE):
        found[host] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counts)}
    return found


def centre(version: str, port: int, devices: list[dict] | None = None) -> dict:
    """A centre's host vars: this agent version and its shipper, `devices` over SNMP."""
    config: dict = {"listen": f"127.0.0.1:{port}"}
    if devices:
        config["snmp"] = devices
    return {
        "erozgar_agent_version": version,
        "erozgar_agent_config": config,
        "erozgar_agent_secrets": {"SNMP_COMMUNITY": SECRET},
        "erozgar_agent_shipper": True,
        "erozgar_agent_remote_write_url": WRITE_URL,
        "erozgar_agent_remote_write_password": PASSWORD,
    }


def version() -> str:
    return agent("--version").stdout.strip()


def shipper_version() -> str:
    done = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", "erozgar-agent-shipper"], capture_output=True,
        text=True,
    )  # fmt: skip
    return done.stdout


def test_ansible_lint_is_clean() -> None:
    done = subprocess.run(
        [tool("ansible-lint"), "--offline"], cwd=ANSIBLE, capture_output=True, text=True,
        env=ansible_env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_inventory_is_the_site_inventory() -> None:
    done = subprocess.run(
        [tool("ansible-inventory"), "--list"], cwd=ANSIBLE, capture_output=True, text=True,
        env=ansible_env(ROOT / "deploy" / "fleet" / "sites.example.csv"), check=True,
    )  # fmt: skip
    listed = json.loads(done.stdout)
    assert listed["centres"]["hosts"] == ["ISB-001", "LHR-004", "DEMO-001"]
    assert listed["_meta"]["hostvars"]["LHR-004"]["erozgar_site_name"] == (
        "e-Rozgar Center Lahore (Johar Town)"
    )
    assert listed["region_punjab"]["hosts"] == ["LHR-004"]


def test_rollout_upgrade_failing_wave_and_rollback(tmp_path: Path) -> None:
    built = debs()
    port = free_tcp_port()
    with machine(tmp_path):
        assert apt("install", str(built.agent(built.old))).returncode == 0
        assert version() == f"erozgar-agent {built.old}"

        # N -> N+1 with one playbook run: the package, the centre's config and secrets, check.
        good = centre(built.new, port)
        done, upgrade_s = playbook(tmp_path, {"PKG-GOOD": good})
        assert done.returncode == 0, done.stdout[-4000:]
        assert recap(done.stdout)["PKG-GOOD"]["failed"] == 0
        assert version() == f"erozgar-agent {built.new}"
        config = yaml.safe_load((ETC / "agent.yml").read_text())
        assert config == {
            "site": {"id": "PKG-GOOD", "name": "Centre PKG-GOOD"},
            "listen": f"127.0.0.1:{port}",
        }
        secrets = ETC / "secrets.env"
        assert f"SNMP_COMMUNITY={SECRET}\n" in secrets.read_text()
        assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
        assert SECRET not in done.stdout + done.stderr
        # The shipper at the same version, with the centre's settings from the inventory.
        assert shipper_version() == built.new
        vmagent_env = (ETC / "vmagent.env").read_text()
        assert "EROZGAR_SITE=PKG-GOOD\nEROZGAR_REGION=lab\n" in vmagent_env
        assert f"EROZGAR_REMOTE_WRITE_URL={WRITE_URL}\n" in vmagent_env
        password = ETC / "remote-write-password"
        assert password.read_text() == PASSWORD + "\n"
        assert stat.S_IMODE(password.stat().st_mode) == 0o600
        assert PASSWORD not in done.stdout + done.stderr

        # A wave whose centre fails its check stops the rollout: the next wave never starts.
        dead_router = {"name": "core-router", "address": f"127.0.0.1:{free_tcp_port()}",
                       "community": "${SNMP_COMMUNITY}", "timeout": 0.5, "retries": 0}  # fmt: skip
        bad = centre(built.new, port, [dead_router])
        done, _ = playbook(
            tmp_path, {"PKG-BAD": bad, "PKG-GOOD": good},
            "-e", json.dumps({"erozgar_waves": ["1", "100%"], "erozgar_max_fail_percentage": 0}),
        )  # fmt: skip
        assert done.returncode != 0
        assert recap(done.stdout)["PKG-BAD"]["failed"] == 1
        assert "PKG-GOOD" not in recap(done.stdout), done.stdout[-3000:]
        assert re.search(r"FAIL: .*failed: core-router", done.stdout), done.stdout[-3000:]
        assert SECRET not in done.stdout + done.stderr

        # The way back: the same playbook, the previous version pinned.
        done, rollback_s = playbook(tmp_path, {"PKG-GOOD": centre(built.old, port)})
        assert done.returncode == 0, done.stdout[-4000:]
        assert version() == f"erozgar-agent {built.old}"
        assert shipper_version() == built.old
        # Run again as is: nothing to change, so a re-run over the fleet restarts no agent.
        done, _ = playbook(tmp_path, {"PKG-GOOD": centre(built.old, port)})
        assert done.returncode == 0 and recap(done.stdout)["PKG-GOOD"]["changed"] == 0, done.stdout
        print(f"\nplaybook N -> N+1 {upgrade_s:.1f} s, rollback {rollback_s:.1f} s")


def test_rollout_from_an_apt_repository(tmp_path: Path) -> None:
    """The other source: an apt repository (here a flat one on disk), newest or pinned."""
    built = debs()
    # apt fetches as its user _apt, which cannot enter pytest's private tmp_path.
    repo = Path(tempfile.mkdtemp(prefix="erozgar-apt-repo-"))
    repo.chmod(0o755)
    for release in (built.old, built.new):
        shutil.copy(built.agent(release), repo)
    scan = subprocess.run(
        [require("dpkg-scanpackages"), "--multiversion", "."], cwd=repo, capture_output=True,
        check=True,
    )  # fmt: skip
    (repo / "Packages").write_bytes(scan.stdout)
    source = Path("/etc/apt/sources.list.d/erozgar-agent.list")
    assert not source.exists(), f"{source} exists on this machine"
    port = free_tcp_port()

    def from_repo(release: str) -> dict:
        return centre(release, port) | {
            "erozgar_agent_deb_dir": "",
            "erozgar_agent_apt_repo": f"deb [trusted=yes] file:{repo} ./",
            "erozgar_agent_shipper": False,
        }

    with machine(tmp_path):
        try:
            done, _ = playbook(tmp_path, {"PKG-REPO": from_repo("")})
            assert done.returncode == 0, done.stdout[-4000:]
            assert version() == f"erozgar-agent {built.new}"  # the newest
            done, _ = playbook(tmp_path, {"PKG-REPO": from_repo(built.old)})
            assert done.returncode == 0, done.stdout[-4000:]
            assert version() == f"erozgar-agent {built.old}"  # pinned: rolled back
        finally:
            source.unlink(missing_ok=True)
            apt("update")  # forgets the repository's lists
            shutil.rmtree(repo)
