"""The endpoint's web config file, in the Prometheus exporter-toolkit format, re-read on change.

    tls_server_config:
      cert_file: /etc/erozgar-agent/tls/agent.crt
      key_file: /etc/erozgar-agent/tls/agent.key
      min_version: TLS12                       # or TLS13
      client_auth_type: RequireAndVerifyClientCert
      client_ca_file: /etc/erozgar-agent/tls/prometheus-ca.crt
    basic_auth_users:
      prometheus: $2b$12$...                   # bcrypt hash (htpasswd -nBC 12 "" | tr -d ':')
    allowed_networks: [10.20.0.0/16, 127.0.0.1/32]   # ours, not exporter-toolkit's

Only the keys we implement are accepted; exporter-toolkit's others (cipher_suites,
http_server_config, rate_limit, ...) are refused by name rather than silently ignored, because
ignoring a security setting would be worse than refusing to start.

`WebGuard.current()` looks at the file's (and the TLS files') mtimes at most once a second; a
changed set is loaded and validated whole, TLS context included, before it replaces the old one.
A broken new file keeps the old settings and logs one error per broken version.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from collectors.schema import STRICT, first_problem

log = logging.getLogger(__name__)

_RECHECK_SECONDS = 1.0
# bcrypt modular-crypt format: $2a$, $2b$ or $2y$, two-digit cost, 53 characters of salt+hash.
_BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")


class WebConfigError(Exception):
    """The web config cannot be used; one line naming the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(**STRICT, str_strip_whitespace=True)


class TlsServerConfig(_Strict):
    cert_file: Annotated[str, Field(min_length=1)]
    key_file: Annotated[str, Field(min_length=1)]
    min_version: Literal["TLS12", "TLS13"] = "TLS12"
    max_version: Literal["TLS12", "TLS13"] | None = None
    # Python's ssl cannot ask for a certificate without verifying it, so exporter-toolkit's
    # RequestClientCert and RequireAnyClientCert have no faithful equivalent and are refused.
    client_auth_type: Literal[
        "NoClientCert", "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"
    ] = "NoClientCert"
    client_ca_file: str | None = None

    def files(self) -> list[str]:
        return [
            self.cert_file,
            self.key_file,
            *([self.client_ca_file] if self.client_ca_file else []),
        ]


class WebConfig(_Strict):
    tls_server_config: TlsServerConfig | None = None
    basic_auth_users: dict[str, str] = {}
    allowed_networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []

    @field_validator("basic_auth_users")
    @classmethod
    def _bcrypt_hashes(cls, users: dict[str, str]) -> dict[str, str]:
        for user, hashed in users.items():
            if ":" in user or not user:
                raise ValueError(f"user {user!r}: a user name cannot be empty or contain ':'")
            if not (hashed.startswith(_BCRYPT_PREFIXES) and len(hashed) == 60):
                # Never echo the value: it may be a plain password pasted by mistake.
                raise ValueError(
                    f"user {user!r}: the password must be a bcrypt hash ($2b$..., 60 "
                    "characters), e.g. from `htpasswd -nBC 12 '' | tr -d ':'`"
                )
        return users

    @property
    def requires_auth(self) -> bool:
        """Every request must prove who it is (a password or a verified client certificate)."""
        tls = self.tls_server_config
        return bool(self.basic_auth_users) or (
            tls is not None and tls.client_auth_type == "RequireAndVerifyClientCert"
        )


@dataclass(frozen=True)
class LoadedWebConfig:
    config: WebConfig
    ssl_context: ssl.SSLContext | None
    signature: tuple[tuple[str, float | None], ...]  # (file, mtime) of everything it read


EMPTY = LoadedWebConfig(WebConfig(), None, ())


def load_web_config(path: str | Path) -> LoadedWebConfig:
    """Read, validate and build the TLS context; raises WebConfigError (one line)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise WebConfigError(f"{path}: cannot read the web config ({exc.strerror})") from None
    except (yaml.YAMLError, UnicodeDecodeError):
        raise WebConfigError(f"{path}: not valid YAML") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise WebConfigError(f"{path}: the top level must be a mapping")
    try:
        config = WebConfig.model_validate(data)
    except ValidationError as exc:
        unknown = "unknown key (we support tls_server_config, basic_auth_users, allowed_networks)"
        raise WebConfigError(f"{path}: {first_problem(exc, unknown_key=unknown)}") from None
    tls = config.tls_server_config
    context = _ssl_context(path, tls) if tls is not None else None
    return LoadedWebConfig(config, context, _signature(path, tls))


def _ssl_context(path: Path, tls: TlsServerConfig) -> ssl.SSLContext:
    versions = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = versions[tls.min_version]
    if tls.max_version is not None:
        context.maximum_version = versions[tls.max_version]
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise WebConfigError(
            f"{path}: tls_server_config.cert_file/key_file: cannot load the certificate and "
            f"key ({_ssl_reason(exc)})"
        ) from None
    if tls.client_auth_type != "NoClientCert":
        if tls.client_ca_file is None:
            raise WebConfigError(
                f"{path}: tls_server_config.client_ca_file: {tls.client_auth_type} needs the "
                "CA that signs client certificates"
            )
        try:
            context.load_verify_locations(cafile=tls.client_ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise WebConfigError(
                f"{path}: tls_server_config.client_ca_file: cannot load ({_ssl_reason(exc)})"
            ) from None
        context.verify_mode = (
            ssl.CERT_REQUIRED
            if tls.client_auth_type == "RequireAndVerifyClientCert"
            else ssl.CERT_OPTIONAL
        )
    return context


def _ssl_reason(exc: OSError | ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or "not a valid PEM certificate or key"
    return exc.strerror or type(exc).__name__


def _signature(path: Path, tls: TlsServerConfig | None) -> tuple[tuple[str, float | None], ...]:
    files = [str(path), *(tls.files() if tls else [])]
    return tuple((f, _mtime(f)) for f in files)


def _mtime(file: str) -> float | None:
    try:
        return os.stat(file).st_mtime
    except OSError:
        return None


class WebGuard:
    """The web config in force. `current()` is cheap and safe to call from any thread."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._loaded = load_web_config(self.path)  # a broken file at start-up is fatal
        self._lock = threading.Lock()
        self._checked = time.monotonic()
        self._reported: tuple[tuple[str, float | None], ...] | None = None

    def current(self) -> LoadedWebConfig:
        now = time.monotonic()
        if now - self._checked < _RECHECK_SECONDS:
            return self._loaded
        with self._lock:
            if now - self._checked >= _RECHECK_SECONDS:
                self._checked = now
                self._reload_if_changed()
        return self._loaded

    def _reload_if_changed(self) -> None:
        loaded = self._loaded
        signature = _signature(self.path, loaded.config.tls_server_config)
        if signature == loaded.signature or signature == self._reported:
            return
        try:
            self._loaded = load_web_config(self.path)
        except WebConfigError as exc:
            self._reported = signature
            log.error("%s; the previous web config stays in force", exc)
            return
        self._reported = None
        log.info("%s: web config reloaded", self.path)
