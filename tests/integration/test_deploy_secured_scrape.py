"""The shipped vmagent config for a locked-down agent (deploy/vmagent/scrape-secured.yml): the
agent serves /metrics over TLS with basic auth only, the real vmagent scrapes it with the
shipped config (only file paths, target and intervals changed) and the data arrives in a real
VictoriaMetrics."""

from __future__ import annotations

import base64
import re
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

import bcrypt
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from .conftest import require, stop
from .deploy_stack import (
    DEPLOY,
    VictoriaMetrics,
    free_tcp_port,
    running,
    scrape_config,
    vmagent_command,
)
from .test_endpoint_security import _cert, _write

CREDENTIALS = "/run/credentials/erozgar-vmagent.service"
PASSWORD = "vmagent-scrape-9"


def agent_text(port: int, ca: Path, user: str | None, password: str) -> tuple[int, str]:
    """(status, body) of GET /metrics over TLS, trusting only `ca`."""
    request = urllib.request.Request(f"https://127.0.0.1:{port}/metrics")
    if user is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    context = ssl.create_default_context(cafile=str(ca))
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def test_vmagent_scrapes_an_agent_behind_tls_and_basic_auth(tmp_path: Path) -> None:
    ca_key, server_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(2))
    ca = _cert("site CA", ca_key, None, ca=True)
    ca_file, _ = _write(tmp_path, "agent-ca", ca, ca_key)
    cert, key = _write(
        tmp_path, "agent", _cert("agent", server_key, (ca.subject, ca_key), server=True), server_key
    )
    user = yaml.safe_load((DEPLOY / "vmagent" / "scrape-secured.yml").read_text())[
        "scrape_configs"
    ][0]["basic_auth"]["username"]
    web = tmp_path / "web.yml"
    web.write_text(
        yaml.safe_dump(
            {
                "tls_server_config": {"cert_file": str(cert), "key_file": str(key)},
                "basic_auth_users": {
                    user: bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
                },
            }
        )
    )
    # The plain password, as `install -m 0600 /dev/stdin ... <<<"$SCRAPE_PASSWORD"` leaves it.
    password_file = tmp_path / "agent-scrape-password"
    password_file.write_text(PASSWORD + "\n")
    password_file.chmod(0o600)
    config = tmp_path / "agent.yml"
    config.write_text(
        yaml.safe_dump(
            {"site": {"id": "TST-SEC"}, "state_dir": str(tmp_path), "web_config_file": str(web)}
        )
    )
    agent_port = free_tcp_port()
    log = tmp_path / "agent.log"
    argv = [
        require("erozgar-agent"),
        "run",
        "--config",
        str(config),
        "--listen",
        f"127.0.0.1:{agent_port}",
    ]
    with log.open("ab") as out:
        agent = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    vm = VictoriaMetrics(tmp_path)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                status, _ = agent_text(agent_port, ca_file, user, PASSWORD)
                if status == 200:
                    break
            except OSError:
                pass
            assert agent.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        # Locked down: no password, no entry (and plain HTTP gets no answer at all).
        assert agent_text(agent_port, ca_file, None, "")[0] == 401
        vm.start()
        vmagent_port = free_tcp_port()
        scrape = scrape_config(
            1.0,
            2.0,
            f"127.0.0.1:{agent_port}",
            {},
            shipped="scrape-secured.yml",
            paths={
                f"{CREDENTIALS}/agent-ca.crt": str(ca_file),
                f"{CREDENTIALS}/agent-scrape-password": str(password_file),
            },
        )
        vmagent = vmagent_command(
            tmp_path, f"{vm.url}/api/v1/write", "TST-SEC", scrape, vmagent_port
        )
        with running(vmagent, tmp_path / "vmagent.log", f"http://127.0.0.1:{vmagent_port}/health"):
            deadline = time.monotonic() + 30
            while not (
                vm.query('erozgar_agent_info{site="TST-SEC"}')
                and vm.query('erozgar_host_cpus{site="TST-SEC"}')
            ):
                assert time.monotonic() < deadline, (tmp_path / "vmagent.log").read_text()[-3000:]
                time.sleep(0.5)
            up = {r["metric"]["job"]: r["value"][1] for r in vm.query('up{site="TST-SEC"}')}
            _, text = agent_text(agent_port, ca_file, user, PASSWORD)
    finally:
        vm.stop()
        stop(agent)
    # Both jobs scraped through TLS with the password; the agent refused nothing of vmagent's.
    assert up == {"erozgar-agent-fast": "1", "erozgar-agent": "1"}
    refusals = [
        line
        for line in text.splitlines()
        if line.startswith("erozgar_http_auth_failures_total{") and not line.endswith(" 0.0")
    ]
    assert refusals == ['erozgar_http_auth_failures_total{reason="missing"} 1.0']  # ours, above
    assert "Traceback" not in log.read_text()


def test_secured_scrape_config_is_the_plain_one_plus_auth_and_tls() -> None:
    """One set of jobs: scrape-secured.yml may differ from scrape.yml only by scheme,
    tls_config and basic_auth, so a metric moved to the fast job moves in both."""
    plain = yaml.safe_load((DEPLOY / "vmagent" / "scrape.yml").read_text())
    secured = yaml.safe_load((DEPLOY / "vmagent" / "scrape-secured.yml").read_text())
    for job in secured["scrape_configs"]:
        assert job.pop("scheme") == "https"
        assert job.pop("tls_config") == {"ca_file": f"{CREDENTIALS}/agent-ca.crt"}
        assert job.pop("basic_auth")["password_file"] == f"{CREDENTIALS}/agent-scrape-password"
    assert secured == plain
    dropin = (DEPLOY / "vmagent/erozgar-vmagent.service.d/agent-credentials.conf").read_text()
    for name in ("agent-ca.crt", "agent-scrape-password"):
        assert f"LoadCredential={name}:" in dropin


@pytest.mark.parametrize("shipped", ["scrape.yml", "scrape-secured.yml"])
def test_vmagent_accepts_the_shipped_scrape_configs(shipped: str, tmp_path: Path) -> None:
    """vmagent -dryRun with the shipped file as is (strict parse: no unknown key)."""
    text = (DEPLOY / "vmagent" / shipped).read_text().replace(CREDENTIALS, str(tmp_path))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    _write(tmp_path, "agent-ca", _cert("site CA", ca_key, None, ca=True), ca_key)
    (tmp_path / "agent-scrape-password").write_text("x\n")
    path = tmp_path / shipped
    path.write_text(text)
    result = subprocess.run(
        [
            require("vmagent"),
            "-dryRun",
            f"-promscrape.config={path}",
            "-promscrape.config.strictParse",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_credentials_dropin_verifies_with_the_vmagent_unit(tmp_path: Path) -> None:
    """systemd-analyze accepts the shipped vmagent unit with the drop-in, and the unit's
    security rating stays what it was (credentials add no privilege)."""
    analyze = require("systemd-analyze")
    unit = DEPLOY / "systemd" / "erozgar-vmagent.service"
    # Every file vmagent reads comes as a credential: its dynamic user cannot read
    # /etc/erozgar-agent (0750 root:erozgar), where the scrape config is installed.
    text = unit.read_text()
    assert "-promscrape.config=%d/vmagent-scrape.yml" in text
    assert "LoadCredential=vmagent-scrape.yml:/etc/erozgar-agent/vmagent-scrape.yml" in text
    (tmp_path / unit.name).write_text(unit.read_text())
    dropins = tmp_path / "erozgar-vmagent.service.d"
    dropins.mkdir()
    conf = DEPLOY / "vmagent" / "erozgar-vmagent.service.d" / "agent-credentials.conf"
    (dropins / conf.name).write_text(conf.read_text())
    verify = subprocess.run(
        [analyze, "verify", unit.name], cwd=tmp_path, capture_output=True, text=True
    )
    assert verify.returncode == 0 and verify.stderr == "", verify.stderr
    shown = subprocess.run(
        [analyze, "security", "--offline=true", unit.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert "Overall exposure level for erozgar-vmagent.service" in shown.stdout
    (score,) = re.findall(r"Overall exposure level for \S+: ([\d.]+) (\w+)", shown.stdout)
    assert float(score[0]) <= 4.0 and score[1] == "OK", shown.stdout[-3000:]
