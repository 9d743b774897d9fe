"""The endpoint locked down by a web config file, through the real process on loopback.

Real TLS (a CA, a server and a client certificate made here with `cryptography`), bcrypt basic
auth, the IP allow-list, and the file re-read while the agent runs. What a user sees: status
codes, the refusal counters on /metrics, one log line per broken web config, no leaks.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .conftest import require
from .test_agent_process import closed_tcp_port, get, samples

pytestmark = pytest.mark.integration
PASSWORD = "scrape-pass-7"


def _cert(
    name: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[x509.Name, Any] | None, *,
    ca: bool = False, server: bool = False,
) -> x509.Certificate:  # fmt: skip
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, issuer_key = issuer if issuer else (subject, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write(directory: Path, name: str, cert: x509.Certificate, key: Any) -> tuple[Path, Path]:
    crt, pem = directory / f"{name}.crt", directory / f"{name}.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))  # fmt: skip
    return crt, pem


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("pki")
    ca_key, server_key, client_key, rogue_key = (ec.generate_private_key(ec.SECP256R1())
                                                 for _ in range(4))  # fmt: skip
    ca = _cert("erozgar test CA", ca_key, None, ca=True)
    rogue_ca = _cert("rogue CA", rogue_key, None, ca=True)
    files: dict[str, Path] = {}
    files["ca"], _ = _write(directory, "ca", ca, ca_key)
    files["server"], files["server_key"] = _write(
        directory, "server", _cert("agent", server_key, (ca.subject, ca_key), server=True),
        server_key,
    )  # fmt: skip
    files["client"], files["client_key"] = _write(
        directory, "client", _cert("prometheus", client_key, (ca.subject, ca_key)), client_key
    )
    files["rogue"], files["rogue_key"] = _write(
        directory, "rogue", _cert("intruder", client_key, (rogue_ca.subject, rogue_key)),
        client_key,
    )  # fmt: skip
    return files


class Agent:
    def __init__(self, web: Path, port: int, process: subprocess.Popen[str]) -> None:
        self.web, self.port, self.process = web, port, process

    def configure(self, settings: dict[str, Any] | str) -> None:
        """Write the web config; the agent looks at it at most once a second."""
        text = settings if isinstance(settings, str) else yaml.safe_dump(settings)
        self.web.write_text(text)
        time.sleep(1.2)


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    web = tmp_path / "web.yml"
    web.write_text("{}\n")
    config = tmp_path / "agent.yml"
    config.write_text(yaml.safe_dump({"site": {"id": "SEC-001"}, "state_dir": str(tmp_path)}))
    port = closed_tcp_port()
    process = subprocess.Popen(
        [require("erozgar-agent"), "run", "--config", str(config),
         "--listen", f"127.0.0.1:{port}", "--web.config.file", str(web)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).close()
            break
        except OSError:
            assert process.poll() is None, process.communicate()
            time.sleep(0.2)
    agent = Agent(web, port, process)
    yield agent
    if process.poll() is None:
        process.terminate()
    process.communicate(timeout=10)


def fetch(
    url: str, *, context: ssl.SSLContext | None = None, user: str | None = None,
    password: str = PASSWORD,
) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    request = urllib.request.Request(url)
    if user is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def client_context(pki: dict[str, Path], cert: str | None = "client") -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki["ca"]))
    if cert is not None:
        context.load_cert_chain(str(pki[cert]), str(pki[f"{cert}_key"]))
    return context


def failures(found: dict, reason: str) -> float:
    return get(found, "erozgar_http_auth_failures_total", reason=reason) or 0


def test_tls_with_client_certificates(agent: Agent, pki: dict[str, Path]) -> None:
    agent.configure({"tls_server_config": {
        "cert_file": str(pki["server"]), "key_file": str(pki["server_key"]),
        "min_version": "TLS12", "client_auth_type": "RequireAndVerifyClientCert",
        "client_ca_file": str(pki["ca"]),
    }})  # fmt: skip
    url = f"https://127.0.0.1:{agent.port}/metrics"
    status, _, body = fetch(url, context=client_context(pki))
    assert status == 200 and b"erozgar_device_up" not in body  # no devices, but metrics
    found = samples(body.decode())
    assert failures(found, "tls_handshake") == 0
    for refused in (client_context(pki, None), client_context(pki, "rogue")):
        with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
            fetch(url, context=refused)
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        fetch(f"http://127.0.0.1:{agent.port}/metrics")  # plain HTTP to a TLS port
    _, _, body = fetch(url, context=client_context(pki))
    assert failures(samples(body.decode()), "tls_handshake") == 3


def test_minimum_tls_version(agent: Agent, pki: dict[str, Path]) -> None:
    agent.configure({"tls_server_config": {
        "cert_file": str(pki["server"]), "key_file": str(pki["server_key"]),
        "min_version": "TLS13",
    }})  # fmt: skip
    url = f"https://127.0.0.1:{agent.port}/healthz"
    old = client_context(pki, None)
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises((ssl.SSLError, urllib.error.URLError)):
        fetch(url, context=old)
    assert fetch(url, context=client_context(pki, None))[0] == 200


def test_basic_auth_with_bcrypt_counts_failures_and_leaks_nothing(agent: Agent) -> None:
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    agent.configure({"basic_auth_users": {"prometheus": hashed}})
    url = f"http://127.0.0.1:{agent.port}/metrics"
    refusals = [
        fetch(url),
        fetch(url, user="prometheus", password="wrong"),
        fetch(url, user="prometheus", password="wrong again"),
        fetch(url, user="eve"),
    ]
    for status, headers, body in refusals:
        assert status == 401
        assert headers["WWW-Authenticate"].startswith('Basic realm="erozgar-agent"')
        assert body == b"unauthorized\n"  # not which user, not why, nothing of the config
    status, _, body = fetch(url, user="prometheus")
    assert status == 200
    found = samples(body.decode())
    assert failures(found, "missing") == 1
    assert failures(found, "wrong_password") == 2
    assert failures(found, "unknown_user") == 1
    assert hashed.encode() not in body


def test_allow_list_denies_loopback_when_only_10_8_is_allowed(agent: Agent) -> None:
    agent.configure({"allowed_networks": ["10.0.0.0/8"]})
    url = f"http://127.0.0.1:{agent.port}/metrics"
    for _ in range(2):
        status, _, body = fetch(url)
        assert (status, body) == (403, b"forbidden\n")
    agent.configure({"allowed_networks": ["10.0.0.0/8", "127.0.0.0/8"]})
    status, _, body = fetch(url)
    assert status == 200
    assert failures(samples(body.decode()), "network") == 2


def test_broken_web_config_keeps_the_old_one_and_logs_once(agent: Agent) -> None:
    agent.configure({"allowed_networks": ["10.0.0.0/8"]})
    assert fetch(f"http://127.0.0.1:{agent.port}/healthz")[0] == 403  # read on a request
    agent.configure("basic_auth_users: {prometheus: not-a-bcrypt-hash}\n")
    for _ in range(3):  # still the allow-list, however often asked
        assert fetch(f"http://127.0.0.1:{agent.port}/healthz")[0] == 403
        time.sleep(0.6)
    agent.configure({"allowed_networks": ["127.0.0.1/32"]})
    assert fetch(f"http://127.0.0.1:{agent.port}/healthz")[0] == 200
    agent.process.terminate()
    stderr = agent.process.communicate(timeout=10)[1]
    assert stderr.count("the previous web config stays in force") == 1, stderr
    assert "basic_auth_users.prometheus: Value error" not in stderr
    assert "not-a-bcrypt-hash" not in stderr


def test_broken_web_config_at_start_is_a_config_error(tmp_path: Path) -> None:
    web = tmp_path / "web.yml"
    web.write_text("tls_server_config: {cert_file: /nonexistent.crt, key_file: /x.key}\n")
    config = tmp_path / "agent.yml"
    config.write_text(yaml.safe_dump({"site": {"id": "SEC-002"}, "web_config_file": str(web)}))
    result = subprocess.run(
        [require("erozgar-agent"), "run", "--config", str(config),
         "--listen", f"127.0.0.1:{closed_tcp_port()}"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2
    assert "tls_server_config.cert_file/key_file: cannot load" in result.stderr
    web.write_text("rate_limit: {interval: 1s}\n")
    result = subprocess.run(
        [require("erozgar-agent"), "run", "--config", str(config),
         "--listen", f"127.0.0.1:{closed_tcp_port()}"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2
    assert "rate_limit: unknown key" in result.stderr


def test_open_endpoint_off_loopback_draws_a_warning(tmp_path: Path) -> None:
    config = tmp_path / "agent.yml"
    port = closed_tcp_port()
    config.write_text(yaml.safe_dump({"site": {"id": "SEC-003"}, "listen": f"0.0.0.0:{port}"}))
    process = subprocess.Popen([require("erozgar-agent"), "run", "--config", str(config)],
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).close()
            break
        except OSError:
            time.sleep(0.2)
    process.terminate()
    stderr = process.communicate(timeout=10)[1]
    assert "answers anyone who can reach it, without authentication" in stderr
