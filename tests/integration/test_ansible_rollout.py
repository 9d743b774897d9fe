"""deploy/ansible: the rollout playbook against this machine (ansible_connection=local).

Two centres from a site inventory CSV both point at this box; the playbook takes it from the
package's N to N+1 with the centre's templated config and secrets, stops a wave when a
centre's `erozgar-agent check` says FAIL, and rolls back to N by pinning the version.
ansible-core and ansible-lint come from deploy/ansible/requirements.txt, in their own venv
(deploy/bootstrap.sh test).
"""

from __future__ import annotations

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
from .debian_machine import ROOT, apt, debs, machine, package_env
from .deploy_stack import free_tcp_port

ANSIBLE = ROOT / "deploy" / "ansible"
VENV = Path(os.environ.get("EROZGAR_ANSIBLE_VENV", "/opt/erozgar-ansible-venv"))
ETC = Path("/etc/erozgar-agent")
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
    done = subprocess.run(
        ["/usr/bin/erozgar-agent", "--version"], capture_output=True, text=True, env=package_env()
    )
    return done.stdout.strip()


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
