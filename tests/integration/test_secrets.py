"""Secrets never leave the agent: not in debug logs, metrics, the status page, `check` output or
error messages, while every device fails. Plus where secrets may come from (${ENV},
${cred:NAME} from systemd's $CREDENTIALS_DIRECTORY) and the warning for a readable file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from .conftest import SnmpPeer, free_udp_port, require
from .test_agent_process import closed_tcp_port

pytestmark = pytest.mark.integration

IN_FILE = "community-in-the-file-9f3"
FROM_ENV = "community-from-env-4c1"
FROM_CRED = "nut-password-from-credential-7d2"
V3_AUTH, V3_PRIV = "v3-auth-secret-1a8", "v3-priv-secret-2b9"
SECRETS = (IN_FILE, FROM_ENV, FROM_CRED, V3_AUTH, V3_PRIV)


def centre_config(snmpd: SnmpPeer, state_dir: Path) -> dict:
    return {
        "site": {"id": "SCR-001"},
        "state_dir": str(state_dir),
        "snmp": [
            # snmpd is alive but the community is wrong: it stays silent (timeout); dead-v2c's
            # port is closed: the kernel answers port unreachable (refused).
            {"name": "wrong-community", "address": f"{snmpd.host}:{snmpd.port}",
             "community": IN_FILE, "interval": 1, "timeout": 0.3, "retries": 0},
            {"name": "dead-v2c", "address": f"127.0.0.1:{free_udp_port()}",
             "community": "${SECRET_COMMUNITY}", "interval": 1, "timeout": 0.3, "retries": 0},
            # v3 with keys snmpd does not know: an auth failure report.
            {"name": "wrong-v3", "address": f"{snmpd.host}:{snmpd.port}", "version": "3",
             "user": "v3user", "auth_protocol": "SHA-256", "auth_password": V3_AUTH,
             "priv_protocol": "AES", "priv_password": V3_PRIV, "interval": 1,
             "timeout": 0.3, "retries": 0},
        ],
        "modbus": [{"name": "dead-ups", "address": f"127.0.0.1:{closed_tcp_port()}",
                    "interval": 1}],
        "nut": [{"name": "dead-nut", "address": f"127.0.0.1:{closed_tcp_port()}", "ups": "ups",
                 "username": "monuser", "password": "${cred:nut-password}", "interval": 1}],
    }  # fmt: skip


@pytest.fixture
def setup(snmpd: SnmpPeer, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "nut-password").write_text(FROM_CRED + "\n")
    path = tmp_path / "agent.yml"
    path.write_text(yaml.safe_dump(centre_config(snmpd, tmp_path)))
    path.chmod(0o600)
    env = {**os.environ, "SECRET_COMMUNITY": FROM_ENV, "CREDENTIALS_DIRECTORY": str(credentials)}
    return path, env


def test_no_secret_in_any_output_with_debug_logging(setup: tuple[Path, dict[str, str]]) -> None:
    path, env = setup
    port = closed_tcp_port()
    log = path.parent / "agent.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [require("erozgar-agent"), "-v", "run", "--config", str(path),
             "--listen", f"127.0.0.1:{port}"],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    pages: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
                text = metrics.read().decode()
            except OSError:
                time.sleep(0.2)
                continue
            if text.count("erozgar_device_down_reason{") == 5:  # every device failed once
                break
            time.sleep(0.3)
        else:
            pytest.fail(f"not every device failed in 30 s: {log.read_text()[-3000:]}")
        time.sleep(2)  # more failed polls, more debug lines
        for page in ("/metrics", "/status.json", "/"):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{page}", timeout=5) as response:
                pages.append(response.read().decode())
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
    check = subprocess.run([require("erozgar-agent"), "-v", "check", "--config", str(path)],
                           capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    check_json = subprocess.run(
        [require("erozgar-agent"), "check", "--json", "--config", str(path)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    logged = log.read_text()
    assert "DEBUG" in logged and "dead-v2c: down (refused)" in logged
    assert check.returncode == 1 and check_json.returncode == 1
    outputs = {"log": logged, "check": check.stdout + check.stderr,
               "check --json": check_json.stdout + check_json.stderr,
               **{f"page {i}": page for i, page in enumerate(pages)}}  # fmt: skip
    for where, text in outputs.items():
        for secret in SECRETS:
            assert secret not in text, f"{secret} in {where}"


def test_readable_config_with_secrets_draws_one_warning(setup: tuple[Path, dict[str, str]]):
    path, env = setup
    validate = [require("erozgar-agent"), "validate", "--config", str(path)]
    quiet = subprocess.run(validate, capture_output=True, text=True, env=env)
    assert quiet.returncode == 0 and "chmod" not in quiet.stderr
    path.chmod(0o644)
    loud = subprocess.run(validate, capture_output=True, text=True, env=env)
    assert loud.returncode == 0
    warnings = [line for line in loud.stderr.splitlines() if "chmod 600" in line]
    assert len(warnings) == 1 and f"{path} holds secrets" in warnings[0], loud.stderr
    # Secrets that come from the environment or credentials are not in the file: no warning.
    path.write_text(path.read_text().replace(IN_FILE, "${SECRET_COMMUNITY}"))
    path.write_text(path.read_text().replace(V3_AUTH, "${cred:v3-auth}"))
    path.write_text(path.read_text().replace(V3_PRIV, "${cred:v3-priv}"))
    credentials = Path(env["CREDENTIALS_DIRECTORY"])
    (credentials / "v3-auth").write_text(V3_AUTH)
    (credentials / "v3-priv").write_text(V3_PRIV)
    fine = subprocess.run(validate, capture_output=True, text=True, env=env)
    assert fine.returncode == 0 and "chmod" not in fine.stderr, fine.stderr


def test_missing_credential_is_a_config_error_naming_the_key(setup: tuple[Path, dict[str, str]]):
    path, env = setup
    (Path(env["CREDENTIALS_DIRECTORY"]) / "nut-password").unlink()
    result = subprocess.run([require("erozgar-agent"), "validate", "--config", str(path)],
                            capture_output=True, text=True, env=env)  # fmt: skip
    assert result.returncode == 2
    assert f"{path}: nut[0].password: credential nut-password: cannot read " in result.stderr
    no_dir = {k: v for k, v in env.items() if k != "CREDENTIALS_DIRECTORY"}
    result = subprocess.run([require("erozgar-agent"), "validate", "--config", str(path)],
                            capture_output=True, text=True, env=no_dir)  # fmt: skip
    assert result.returncode == 2
    assert "nut[0].password: credential nut-password: $CREDENTIALS_DIRECTORY is not set" in (
        result.stderr
    )
