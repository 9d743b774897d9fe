"""The built .debs and this machine as a place to install them, restored afterwards.

The package tests install erozgar-agent on the machine itself (CI runs them as root on a
Debian 12 box). `machine()` serialises them (one lock for every test process here), refuses
when the package is installed already, and gives back what it found: the `erozgar` user and
group, net.ipv4.ping_group_range, /etc/erozgar-agent, /var/lib/erozgar-agent (a developer's
agent may keep state there) and /var/cache/erozgar-agent. /opt/erozgar-venv, the test venv,
is never touched.
"""

from __future__ import annotations

import atexit
import fcntl
import functools
import grp
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import missing, require
from .deploy_stack import DEPLOY

ROOT = DEPLOY.parent
BUILD = ROOT / "packaging" / "build-deb.sh"
PING_RANGE = Path("/proc/sys/net/ipv4/ping_group_range")
KEPT_DIRS = tuple(
    Path(p) for p in ("/etc/erozgar-agent", "/var/lib/erozgar-agent", "/var/cache/erozgar-agent")
)
PACKAGES = ("erozgar-agent-shipper", "erozgar-agent")


@dataclass(frozen=True)
class Debs:
    old: str  # N: pyproject.toml's version
    new: str  # N+1: its last number plus one
    directory: Path
    build_seconds: float  # both versions (and the dependencies' venv when not cached yet)

    def agent(self, version: str) -> Path:
        return self.directory / f"erozgar-agent_{version}_{arch()}.deb"

    def shipper(self, version: str) -> Path:
        return self.directory / f"erozgar-agent-shipper_{version}_all.deb"


def arch() -> str:
    return subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
    ).stdout.strip()


def package_env() -> dict[str, str]:
    """The environment for the packaged agent and apt: without this worktree on the path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return env | {"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8"}


def build(version: str, out: Path) -> list[Path]:
    done = subprocess.run(
        ["bash", str(BUILD), "--version", version, "--out", str(out)],
        capture_output=True, text=True, env=package_env(), timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return [Path(line) for line in done.stdout.split()]


@functools.cache
def debs() -> Debs:
    """N and N+1, built once per test session (the first build of the venv takes a minute)."""
    for tool in ("dpkg-deb", "apt-get", "git", "objdump"):
        require(tool)
    old = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    parts = old.split(".")
    new = ".".join([*parts[:-1], str(int(parts[-1]) + 1)])
    directory = Path(tempfile.mkdtemp(prefix="erozgar-debs-"))
    atexit.register(shutil.rmtree, directory, True)
    started = time.monotonic()
    build(old, directory)
    build(new, directory)
    return Debs(old, new, directory, time.monotonic() - started)


def apt(*args: str) -> subprocess.CompletedProcess[str]:
    """apt-get as an operator would run it; output (maintainer scripts' too) in stdout."""
    return subprocess.run(
        ["apt-get", "-y", "-q", *args], capture_output=True, text=True, env=package_env(),
        timeout=300,
    )  # fmt: skip


def dpkg_state(package: str) -> str:
    """dpkg's state: "installed", "config-files" (removed, config kept), or "" (not there)."""
    status = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True
    ).stdout.split()
    return status[-1] if status and status[-1] != "not-installed" else ""


def erozgar_account() -> tuple[bool, bool]:
    """Whether the user and the group `erozgar` exist."""
    user = any(entry.pw_name == "erozgar" for entry in pwd.getpwall())
    return user, any(entry.gr_name == "erozgar" for entry in grp.getgrall())


@contextmanager
def machine(tmp_path: Path) -> Iterator[None]:
    if os.geteuid() != 0:
        missing("the Debian package tests install a package: run them as root")
    with open("/run/lock/erozgar-deb-tests.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for package in PACKAGES:
            if dpkg_state(package):
                pytest.fail(f"{package} is installed on this machine: purge it first")
        had_user, had_group = erozgar_account()
        ping_range = PING_RANGE.read_text()
        saved = tmp_path / "saved"
        for directory in KEPT_DIRS:
            if directory.exists():
                target = saved / directory.relative_to("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                subprocess.run(["cp", "-a", str(directory), str(target)], check=True)
        try:
            yield
        finally:
            apt("purge", *[p for p in PACKAGES if dpkg_state(p)])
            for directory in KEPT_DIRS:
                shutil.rmtree(directory, ignore_errors=True)
                copy = saved / directory.relative_to("/")
                if copy.exists():
                    subprocess.run(["cp", "-a", str(copy), str(directory)], check=True)
            PING_RANGE.write_text(ping_range)
            user, group = erozgar_account()
            if user and not had_user:
                subprocess.run(["userdel", "erozgar"], check=True)
            if group and not had_group and erozgar_account()[1]:
                subprocess.run(["groupdel", "erozgar"], check=True)
