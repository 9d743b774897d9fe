"""The agent's YAML config: strict validation at load, one readable line per problem.

Unknown keys, wrong types, bad addresses and duplicate device names are errors that name the
key (`snmp[0].community: ...`). `${ENV_VAR}` is expanded in string values before validation so
secrets can stay out of the file; secrets are `SecretStr` and print as `**********`.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9-]{1,63})*$"
)


class ConfigError(Exception):
    """The config cannot be used. `problems` holds one line per problem, already prefixed."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def split_host_port(value: str, default_port: int) -> tuple[str, int]:
    """'host', 'host:port' or '[v6]:port' -> (host, port); raises ValueError with a hint."""
    text = value.strip()
    host, port = text, default_port
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise ValueError(f"'{value}' opens '[' without ']'")
        host, rest = text[1:close], text[close + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"'{value}' has text after ']' that is not ':port'")
            port = _port(rest[1:], value)
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        port = _port(port_text, value)
    if not host:
        raise ValueError(f"'{value}' has no host")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOSTNAME.match(host):
            raise ValueError(f"'{host}' is neither an IP address nor a host name") from None
    return host, port


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"'{whole}' has port '{text}'; use a number from 1 to 65535")
    return int(text)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


Seconds = Annotated[float, Field(gt=0, le=86400)]
DeviceName = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
]


class Site(_Strict):
    id: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")]
    name: str = ""


class InterfaceSettings(_Strict):
    """Per-port settings, matched by the interface's ifName."""

    name: Annotated[str, Field(min_length=1)]
    role: Literal["wan", "uplink", "lan"] = "lan"
    capacity_down_mbps: Annotated[float, Field(gt=0)] | None = None
    capacity_up_mbps: Annotated[float, Field(gt=0)] | None = None


class _Device(_Strict):
    name: DeviceName
    address: str

    @field_validator("address")
    @classmethod
    def _address_parses(cls, value: str) -> str:
        split_host_port(value, 1)
        return value


class SnmpDevice(_Device):
    version: Literal["1", "2c"] = "2c"
    community: SecretStr
    interval: Seconds = 15
    timeout: Annotated[float, Field(gt=0, le=60)] = 2
    retries: Annotated[int, Field(ge=0, le=5)] = 1
    interfaces: list[InterfaceSettings] = []

    @property
    def host_port(self) -> tuple[str, int]:
        return split_host_port(self.address, 161)

    @model_validator(mode="after")
    def _unique_ports(self) -> SnmpDevice:
        names = [i.name for i in self.interfaces]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"interfaces: port {dup[0]!r} is listed twice")
        return self


class ModbusDevice(_Device):
    unit: Annotated[int, Field(ge=0, le=255)] = 1
    profile: str = "apc-smart-ups"
    interval: Seconds = 5
    timeout: Annotated[float, Field(gt=0, le=60)] = 2
    retries: Annotated[int, Field(ge=0, le=5)] = 1

    @property
    def host_port(self) -> tuple[str, int]:
        return split_host_port(self.address, 502)

    @field_validator("profile")
    @classmethod
    def _profile_exists(cls, value: str) -> str:
        from collectors.modbus.profile import available_profiles

        known = available_profiles()
        if value not in known:
            raise ValueError(f"unknown profile {value!r}; known: {', '.join(known)}")
        return value


class HostSettings(_Strict):
    interval: Seconds = 15
    filesystems: list[str] = ["/"]


class Config(_Strict):
    site: Site
    listen: str = "0.0.0.0:9877"
    state_dir: str = "/var/lib/erozgar-agent"
    host: HostSettings = HostSettings()
    snmp: list[SnmpDevice] = []
    modbus: list[ModbusDevice] = []

    @field_validator("listen")
    @classmethod
    def _listen_parses(cls, value: str) -> str:
        split_host_port(value, 9877)
        return value

    @property
    def listen_host_port(self) -> tuple[str, int]:
        return split_host_port(self.listen, 9877)

    @model_validator(mode="after")
    def _unique_names(self) -> Config:
        seen: dict[str, str] = {}
        for section, devices in (("snmp", self.snmp), ("modbus", self.modbus)):
            for i, device in enumerate(devices):
                where = f"{section}[{i}].name"
                if device.name in seen:
                    used_by = seen[device.name]
                    raise ValueError(f"{where}: device name {device.name!r} is used by {used_by}")
                seen[device.name] = where
        return self


def expand_env(value: object, path: str, problems: list[str]) -> object:
    """Replace ${VAR} in every string; an unset variable is a problem naming the key."""
    if isinstance(value, dict):
        return {
            k: expand_env(v, f"{path}.{k}" if path else str(k), problems) for k, v in value.items()
        }
    if isinstance(value, list):
        return [expand_env(v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    if isinstance(value, str):

        def lookup(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                problems.append(f"{path}: environment variable {name} is not set")
                return ""
            return os.environ[name]

        return _ENV_REF.sub(lookup, value)
    return value


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith(("function-after", "function-before")):
            continue
        else:
            out += f".{part}" if out else part
    return out


def _describe(error: dict[str, object]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key (check its spelling against deploy/config.example.yml)"
    if kind == "missing":
        return "required key is missing"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def parse_config(data: object, source: str = "config") -> Config:
    """Validate already-parsed YAML; raises ConfigError listing every problem."""
    if not isinstance(data, dict):
        raise ConfigError([f"{source}: the top level must be a mapping with site:, snmp:, modbus:"])
    problems: list[str] = []
    expanded = expand_env(data, "", problems)
    try:
        config = Config.model_validate(expanded)
    except ValidationError as exc:
        for error in exc.errors():
            where = _location(error["loc"])
            problems.append(
                f"{where}: {_describe(dict(error))}" if where else _describe(dict(error))
            )
        config = None
    if problems or config is None:
        raise ConfigError([f"{source}: {p}" for p in problems])
    return config


def load_config(path: str | Path) -> Config:
    """Read and validate a config file; raises ConfigError with one line per problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the config file ({exc.strerror})"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: the file is not UTF-8 text"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError([f"{path}: YAML syntax error{where}: {problem}"]) from None
    return parse_config(data, str(path))
