"""The agent's YAML config: strict validation at load, one readable line per problem.

Unknown keys, wrong types, bad addresses and duplicate device names are errors that name the
key (`snmp[0].community: ...`). `${ENV_VAR}` is expanded in string values before validation so
secrets can stay out of the file; secrets are `SecretStr` and print as `**********`.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal, get_args, get_origin
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from collectors.schema import STRICT, key_text
from collectors.schema import problems as schema_problems

from .secrets import read_credential

if TYPE_CHECKING:
    from collectors.modbus.transport import Link
    from collectors.probe import Binding

# ${NAME}: environment variable; ${cred:NAME}: systemd credential (agent/secrets.py).
_ENV_REF = re.compile(r"\$\{(?:cred:([A-Za-z0-9_][A-Za-z0-9_.-]*)|([A-Za-z_][A-Za-z0-9_]*))\}")
_UNKNOWN_KEY = "unknown key (check its spelling against deploy/config.example.yml)"
_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
PROFILE_DIR = "/etc/erozgar-agent/profiles"


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
    return check_address(host), port


def check_address(host: str) -> str:
    """`host` if it is an IP address or a name DNS could hold; else ValueError saying why.

    Every address that may be a name goes through here (those that must be an address, such
    as probe targets and resolvers, through check_ip). No lookup: `validate` must work offline and
    a name the box cannot resolve yet (a centre's local DNS) is not wrong. A name is labels of
    letters, digits and inner hyphens (RFC 1123); one whose last label is a number is refused,
    because resolvers read `10.0.0` as 10.0.0.0 and `999.1.1.1` is a mistyped address, not a
    name (RFC 3696 section 2).
    """
    if _is_ip(host):
        return host
    labels = host.removesuffix(".").split(".")
    if len(host) <= 253 and all(_LABEL.match(label) for label in labels):
        if not labels[-1].isdigit():
            return host
        raise ValueError(
            f"'{host}' is neither an IP address nor a host name: an IPv4 address is four "
            "numbers from 0 to 255 (e.g. 10.0.0.1), and a host name does not end in a number"
        )
    raise ValueError(f"'{host}' is neither an IP address nor a host name")


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"'{whole}' has port '{text}'; use a number from 1 to 65535")
    return int(text)


class _Strict(BaseModel):
    model_config = ConfigDict(**STRICT, str_strip_whitespace=True)


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
    # utilization at or above this share of capacity counts as saturated time
    saturation_threshold: Annotated[float, Field(gt=0, le=1)] = 0.9


class DeviceSettings(_Strict):
    """What every device kind's settings have; each kind adds its own (agent/kinds/)."""

    name: DeviceName
    address: str

    @property
    def gateway_key(self) -> tuple[str, str, int] | None:
        """The shared gateway connection this device is polled through (None: its own)."""
        return None

    @field_validator("address")
    @classmethod
    def _address_parses(cls, value: str) -> str:
        split_host_port(value, 1)
        return value


class PortSelection(_Strict):
    """Which ports of an SNMP device are polled and exported (see deploy/config.example.yml)."""

    include: list[str] = []  # ifName globs; empty = every port
    exclude: list[str] = []  # ifName globs, applied after include
    roles_only: bool = False  # only the ports listed under interfaces:
    admin_up_only: bool = False  # skip ports an operator disabled
    # GET only the ports listed under interfaces: (by cached ifIndex) instead of walking the
    # whole table: cheapest for a big switch of which two uplinks matter.
    pinned: bool = False
    # LAGs and the few fastest ports are uplinks unless listed (agent/checks/ports.py)
    auto_uplinks: bool = True


SnmpAuthProtocol = Literal["MD5", "SHA", "SHA-224", "SHA-256", "SHA-384", "SHA-512"]
# AES-192/256: Blumenthal's key extension (net-snmp, snmp_exporter); AES-192C/256C: Reeder's
# (Cisco). They differ only with MD5 or SHA-1 auth (SHA-224 with AES-256): usm.py.
SnmpPrivProtocol = Literal["DES", "AES", "AES-128", "AES-192", "AES-256", "AES-192C", "AES-256C"]


class SnmpDevice(DeviceSettings):
    version: Literal["1", "2c", "3"] = "2c"
    community: SecretStr | None = None  # v1/v2c
    user: str | None = None  # v3 (USM user name)
    auth_protocol: SnmpAuthProtocol | None = None
    auth_password: SecretStr | None = None
    priv_protocol: SnmpPrivProtocol | None = None
    priv_password: SecretStr | None = None
    context: str = ""
    interval: Seconds = 15
    timeout: Annotated[float, Field(gt=0, le=60)] = 2
    retries: Annotated[int, Field(ge=0, le=5)] = 1
    interfaces: list[InterfaceSettings] = []
    name_cache_minutes: Annotated[float, Field(gt=0, le=1440)] = 15
    ports: PortSelection = PortSelection()
    # The UPS device that feeds it, or "mains" (no UPS); unset: every UPS of the site. Decides
    # whether a power cut explains its silence (agent/checks/service.py).
    powered_by: DeviceName | None = None

    @field_validator("auth_password", "priv_password")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 8:
            raise ValueError("must be at least 8 characters (RFC 3414 passphrase minimum)")
        return value

    @model_validator(mode="after")
    def _credentials(self) -> SnmpDevice:
        if self.version != "3":
            if self.community is None:
                raise ValueError(f"community: required key is missing for version {self.version}")
            for key in ("user", "auth_protocol", "auth_password", "priv_protocol"):
                if getattr(self, key) is not None:
                    raise ValueError(f'{key}: only for version "3"')
            return self
        if self.community is not None:
            raise ValueError('community: not used by version "3" (give user and keys)')
        if not self.user:
            raise ValueError('user: required for version "3"')
        for kind in ("auth", "priv"):
            protocol = getattr(self, f"{kind}_protocol")
            password = getattr(self, f"{kind}_password")
            if protocol is not None and password is None:
                raise ValueError(f"{kind}_password: required with {kind}_protocol")
            if protocol is None and password is not None:
                raise ValueError(f"{kind}_protocol: required with {kind}_password")
        if self.priv_protocol is not None and self.auth_protocol is None:
            raise ValueError("auth_protocol: required with priv_protocol (authPriv)")
        return self

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


class BatteryKeys(_Strict):
    """What the site knows about a UPS's battery; feeds the health estimate
    (agent/checks/battery.py)."""

    # Date the battery was fitted; else the UPS's own battery date (APC register 595).
    battery_installed: datetime.date | None = None
    # NUT's runtimecal: [runtime s at load %, that load %, runtime s at load %, that load %]
    # for a NEW battery, from the datasheet; e.g. [240, 100, 720, 50].
    battery_runtimecal: tuple[float, float, float, float] | None = None
    battery_design_life_years: Annotated[float, Field(gt=0, le=30)] = 5.0
    # Seconds the site needs to shut its equipment down cleanly; the runtime margin
    # (erozgar_ups_runtime_margin_seconds) keeps this much runtime in hand.
    shutdown_margin_seconds: Annotated[float, Field(ge=0, le=86400)] = 0.0

    @field_validator("battery_runtimecal")
    @classmethod
    def _runtimecal_sane(
        cls, value: tuple[float, float, float, float] | None
    ) -> tuple[float, float, float, float] | None:
        if value is None:
            return value
        t_high, load_high, t_low, load_low = value
        if min(value) <= 0 or load_high <= load_low or t_high >= t_low:
            raise ValueError(
                "give [runtime s, load %, runtime s, load %] with the higher load first and "
                "a shorter runtime at it, e.g. [240, 100, 720, 50]"
            )
        return value


class ModbusConnection(DeviceSettings):
    """How a Modbus device is reached and read; each Modbus list adds what its role needs."""

    # The profile role this list serves, and the list that serves each other role.
    ROLE: ClassVar[str] = "ups"
    LISTS: ClassVar[dict[str, str]] = {"ups": "modbus", "genset": "genset", "inverter": "inverter"}

    unit: Annotated[int, Field(ge=0, le=255)] = 1
    profile: str
    interval: Seconds = 5
    timeout: Annotated[float, Field(gt=0, le=60)] = 2
    retries: Annotated[int, Field(ge=0, le=5)] = 1
    # tcp: Modbus TCP; rtu: serial port (address /dev/ttyUSB0); rtu-over-tcp: serial gateway.
    transport: Literal["tcp", "rtu", "rtu-over-tcp"] = "tcp"
    baudrate: Annotated[int, Field(ge=300, le=921600)] = 9600
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[8] = 8
    # Quiet seconds between requests on the gateway; None: 0.05 for rtu, 0 otherwise.
    request_pause: Annotated[float, Field(ge=0, le=5)] | None = None
    # Word/byte order of 32-bit values when this unit differs from its profile's (`check`
    # names the order that makes its values plausible); None: the profile's.
    byte_order: Literal["ABCD", "CDAB", "BADC", "DCBA"] | None = None

    @field_validator("address")
    @classmethod
    def _address_parses(cls, value: str) -> str:  # replaces DeviceSettings's: rtu takes a path
        if not value.startswith("/"):
            split_host_port(value, 1)
        return value

    @model_validator(mode="after")
    def _address_fits_transport(self) -> ModbusConnection:
        is_path = self.address.startswith("/")
        if self.transport == "rtu" and not is_path:
            raise ValueError(
                f"address: transport rtu needs a serial device path such as /dev/ttyUSB0, "
                f"not {self.address!r}"
            )
        if self.transport != "rtu" and is_path:
            raise ValueError(
                f"address: transport {self.transport} needs host[:port], not a device path; "
                "set transport: rtu for a serial port"
            )
        return self

    @property
    def host_port(self) -> tuple[str, int]:
        return split_host_port(self.address, 502)

    @property
    def pause(self) -> float:
        if self.request_pause is not None:
            return self.request_pause
        return 0.05 if self.transport == "rtu" else 0.0

    @property
    def gateway_key(self) -> tuple[str, str, int]:
        return self.link.key

    @property
    def link(self) -> Link:
        from collectors.modbus.transport import Link

        if self.transport == "rtu":
            return Link("rtu", self.address, 0, self.baudrate, self.parity, self.stopbits)
        host, port = self.host_port
        return Link(self.transport, host, port)

    @field_validator("profile")
    @classmethod
    def _profile_exists(cls, value: str, info: ValidationInfo) -> str:
        from collectors.modbus.profile import available_profiles

        site = (info.context or {}).get("profile_dir")
        known = available_profiles(site)
        if value not in known:
            raise ValueError(f"unknown profile {value!r}; known: {', '.join(known)}")
        role = _profile_role(value, site)
        if role is not None and role != cls.ROLE:
            where, own = cls.LISTS.get(role), cls.LISTS[cls.ROLE]
            if where is None:
                raise ValueError(f"{value} has role {role}, which no device list reads yet")
            raise ValueError(
                f"{value} has role {role}: configure this device under {where}:, not {own}:"
            )
        return value


def _profile_role(name: str, site: str | None) -> str | None:
    """The role a Modbus profile declares; None when it does not load (the site profile
    check reports that, naming its file)."""
    from collectors.modbus.profile import load_profile
    from collectors.packaged import ProfileError

    try:
        return load_profile(name, site).role
    except ProfileError:
        return None


class ModbusDevice(ModbusConnection, BatteryKeys):
    """A UPS read over Modbus."""

    profile: str = "apc-smart-ups"


class GensetDevice(ModbusConnection):
    """A generator controller read over Modbus (agent/kinds/genset.py)."""

    ROLE: ClassVar[str] = "genset"
    profile: str = "dse-gencomm"
    unit: Annotated[int, Field(ge=0, le=255)] = 10  # DSE GenComm's default slave id
    # Not on load this long after a mains loss counts a start failure (agent/checks/genset.py).
    start_timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = 120


class InverterDevice(ModbusConnection):
    """A solar hybrid inverter read over Modbus: its profile has role inverter."""

    ROLE: ClassVar[str] = "inverter"
    profile: str  # no default: no inverter is common enough to be assumed


class NutDevice(DeviceSettings, BatteryKeys):
    """A UPS served by NUT's upsd (USB UPS): `ups` is the name in upsd's ups.conf."""

    ups: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    username: Annotated[str, Field(min_length=1, pattern=r"^\S+$")] | None = None
    password: SecretStr | None = None
    interval: Seconds = 5
    timeout: Annotated[float, Field(gt=0, le=60)] = 2

    @property
    def host_port(self) -> tuple[str, int]:
        return split_host_port(self.address, 3493)

    @model_validator(mode="after")
    def _credentials_pair(self) -> NutDevice:
        if (self.username is None) != (self.password is None):
            missing = "password" if self.password is None else "username"
            raise ValueError(f"{missing}: give username and password together, or neither")
        return self


class HostSettings(_Strict):
    interval: Seconds = 15
    filesystems: list[str] = ["/"]


class LinkTarget(_Strict):
    """Where a WAN link is probed: ICMP echo, or TCP connect when `tcp_port` is set."""

    name: DeviceName
    address: str
    tcp_port: Annotated[int, Field(ge=1, le=65535)] | None = None

    @field_validator("address")
    @classmethod
    def _ip(cls, value: str) -> str:
        return check_ip(value)  # probes compare replies with it


def check_ip(value: str, version: int | None = None) -> str:
    """An IPv4 or IPv6 address (of `version` if given), in its compressed form; no names:
    a probe must not depend on the DNS it may be measuring."""
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        ip = None
    if version is not None and (ip is None or ip.version != version):
        raise ValueError(f"'{value}' is not an IPv{version} address")
    if ip is None:
        raise ValueError(f"'{value}' is not an IP address (IPv4 or IPv6)")
    return str(ip)


class DnsResolverSettings(_Strict):
    """A resolver a link's DNS probe asks: the ISP's, a public one. `address`: an IP, with
    ':port' ('[v6]:port' for IPv6) when it is not 53."""

    name: DeviceName
    address: str

    @field_validator("address")
    @classmethod
    def _ip_port(cls, value: str) -> str:
        host, _ = split_host_port(value, 53)
        check_ip(host)
        return value

    @property
    def host_port(self) -> tuple[str, int]:
        host, port = split_host_port(self.address, 53)
        return str(ipaddress.ip_address(host)), port


class DnsProbeSettings(_Strict):
    """Resolve `query` through each resolver every run: time to answer, rcode, records."""

    query: str
    types: Annotated[list[Literal["A", "AAAA"]], Field(min_length=1)] = ["A"]
    timeout: Annotated[float, Field(gt=0, le=10)] = 2
    resolvers: Annotated[list[DnsResolverSettings], Field(min_length=1)]

    @field_validator("query")
    @classmethod
    def _name(cls, value: str) -> str:
        host = check_address(value)
        if _is_ip(host):
            raise ValueError(f"'{value}' is an address; the probe resolves a name")
        return host

    @field_validator("resolvers")
    @classmethod
    def _unique(cls, value: list[DnsResolverSettings]) -> list[DnsResolverSettings]:
        names = [r.name for r in value]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"resolver name {dup[0]!r} is used twice")
        return value


class HttpProbeSettings(_Strict):
    """GET `url` every run: phases to the first byte and the end, status, certificate expiry."""

    name: DeviceName
    url: str
    timeout: Annotated[float, Field(gt=0, le=30)] = 5
    max_bytes: Annotated[int, Field(ge=1, le=64 << 20)] = 1 << 20  # read at most this much
    ca_file: str | None = None  # https: trust this CA (PEM) instead of the system's

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        try:
            parts = urlsplit(value)
            if parts.port == 0:  # reading the port refuses a malformed one too
                raise ValueError("port 0")
        except ValueError as exc:
            raise ValueError(f"'{value}' is not a URL: {exc}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"'{value}' is not an http:// or https:// URL with a host")
        if not value.isascii() or any(c.isspace() for c in value):
            raise ValueError(f"'{value}' has spaces or non-ASCII characters; percent-encode them")
        if parts.username or parts.password:
            raise ValueError(f"'{value}' holds credentials; the probe sends none")
        check_address(parts.hostname)
        return value


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


class CapacityTestSettings(_Strict):
    """A WAN link's scheduled capacity test (agent/checks/capacity.py): iperf3 against a
    PSEB-run server, else an HTTP download and upload; within `window` (the box's local time),
    at most `runs_per_day` runs and `max_bytes_per_day` bytes, never while the port is busy or
    the centre is on battery."""

    iperf3: str | None = None  # host[:port] of an iperf3 server; default port 5201
    download_url: Annotated[str, Field(pattern=r"^https?://[^/\s]+")] | None = None
    upload_url: Annotated[str, Field(pattern=r"^https?://[^/\s]+")] | None = None
    window: str = "02:00-05:00"  # local time HH:MM-HH:MM; may cross midnight
    runs_per_day: Annotated[int, Field(ge=1, le=24)] = 1
    duration: Annotated[float, Field(ge=2, le=30)] = 10  # seconds per direction
    max_bytes_per_day: Annotated[int, Field(gt=0)] = 2_000_000_000
    # Skip while the port carried more than this share of its contract in the last
    # busy_minutes (the bandwidth check's rates of the link's device/interface).
    busy_threshold: Annotated[float, Field(gt=0, le=1)] = 0.3
    busy_minutes: Annotated[float, Field(gt=0, le=60)] = 5
    # Delivered below this share of the contract is a failed verdict.
    contract_share: Annotated[float, Field(gt=0, le=1)] = 0.8
    # The contract, for a link whose router port does not state it (InterfaceSettings's names).
    capacity_down_mbps: Annotated[float, Field(gt=0)] | None = None
    capacity_up_mbps: Annotated[float, Field(gt=0)] | None = None
    # iperf3 authentication (server with --authorized-users-path): the password goes to the
    # client in its environment (IPERF3_PASSWORD), never on its command line.
    username: Annotated[str, Field(min_length=1, pattern=r"^\S+$")] | None = None
    password: SecretStr | None = None
    rsa_public_key_path: str | None = None

    @field_validator("iperf3")
    @classmethod
    def _iperf3_parses(cls, value: str | None) -> str | None:
        if value is not None:
            split_host_port(value, 5201)
        return value

    @field_validator("download_url", "upload_url")
    @classmethod
    def _url_host(cls, value: str | None) -> str | None:
        if value is not None and "@" in urlsplit(value).netloc:
            raise ValueError("no user:password@ here: the speed-test server takes no login")
        return Config._url_host(value)

    @field_validator("window")
    @classmethod
    def _window_parses(cls, value: str) -> str:
        match = _WINDOW.match(value)
        if match is None or match.groups()[:2] == match.groups()[2:]:
            raise ValueError(f"{value!r}: give local times HH:MM-HH:MM, e.g. 02:00-05:00")
        return value

    @property
    def window_minutes(self) -> tuple[int, int]:
        """(start, length) in minutes after local midnight."""
        match = _WINDOW.match(self.window)
        assert match is not None  # validated above
        h1, m1, h2, m2 = (int(part) for part in match.groups())
        start = h1 * 60 + m1
        return start, (h2 * 60 + m2 - start) % 1440

    @property
    def iperf3_host_port(self) -> tuple[str, int] | None:
        return None if self.iperf3 is None else split_host_port(self.iperf3, 5201)

    @model_validator(mode="after")
    def _fits(self) -> CapacityTestSettings:
        if self.iperf3 is None and self.download_url is None and self.upload_url is None:
            raise ValueError("give iperf3: (host[:port]) and/or download_url:/upload_url:")
        if (self.username is None) != (self.password is None):
            missing = "password" if self.password is None else "username"
            raise ValueError(f"{missing}: give username and password together, or neither")
        if self.username is not None and self.rsa_public_key_path is None:
            raise ValueError("rsa_public_key_path: iperf3 authentication needs the server's key")
        return self


class LinkSettings(_Strict):
    """One WAN link (ISP uplink) and the targets its probes measure it by."""

    name: DeviceName
    # The ISP that sells this line: reports and central rules group links by it.
    isp: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    device: str | None = None  # the snmp device and port that carry the link
    interface: str | None = None
    source_address: str | None = None
    source_address6: str | None = None  # where the link has IPv6: its address on this box
    bind_interface: Annotated[str, Field(min_length=1, max_length=15)] | None = None  # IFNAMSIZ
    interval: Seconds = 30
    count: Annotated[int, Field(ge=1, le=100)] = 5
    spacing: Annotated[float, Field(ge=0.01, le=10)] = 0.5
    timeout: Annotated[float, Field(gt=0, le=10)] = 1
    targets: Annotated[list[LinkTarget], Field(min_length=1)]
    dns: DnsProbeSettings | None = None
    http: list[HttpProbeSettings] = []
    capacity_test: CapacityTestSettings | None = None

    @field_validator("source_address")
    @classmethod
    def _source_ipv4(cls, value: str | None) -> str | None:
        return None if value is None else check_ip(value, 4)

    @field_validator("source_address6")
    @classmethod
    def _source_ipv6(cls, value: str | None) -> str | None:
        return None if value is None else check_ip(value, 6)

    @property
    def binding(self) -> Binding:
        from collectors.probe import Binding

        return Binding(self.source_address, self.source_address6, self.bind_interface)

    @property
    def run_seconds(self) -> float:
        """Longest a probe run can take: the last packet leaves, then its timeout runs out;
        the DNS and HTTP probes run alongside."""
        icmp = (self.count - 1) * self.spacing + self.timeout
        return max([icmp, self.dns.timeout if self.dns else 0, *(h.timeout for h in self.http)])

    @model_validator(mode="after")
    def _fits(self) -> LinkSettings:
        names = [t.name for t in self.targets]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"targets: target name {dup[0]!r} is used twice")
        names = [h.name for h in self.http]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"http: target name {dup[0]!r} is used twice")
        if self.interface is not None and self.device is None:
            raise ValueError("interface: needs device: (the snmp device that has this port)")
        self._families_have_sources()
        icmp = (self.count - 1) * self.spacing + self.timeout
        if icmp > self.interval * 0.9:
            raise ValueError(
                f"count: a probe run takes up to {icmp:g} s ((count - 1) x spacing + timeout), "
                f"too long for interval {self.interval:g} s; lower count, spacing or timeout, "
                "or raise interval"
            )
        slow = [("dns: the", self.dns.timeout)] if self.dns else []
        slow += [(f"http: {h.name}'s", h.timeout) for h in self.http]
        for whose, seconds in slow:
            if seconds > self.interval * 0.9:
                raise ValueError(
                    f"{whose} timeout {seconds:g} s does not fit in 0.9 x interval "
                    f"{self.interval:g} s; lower it or raise interval"
                )
        return self

    def _families_have_sources(self) -> None:
        """A link bound to an IPv4 source address cannot reach an IPv6 peer without its IPv6
        source: say so at load rather than as a bind error every run."""
        peers = [("targets", t.address) for t in self.targets]
        peers += [("dns", r.host_port[0]) for r in (self.dns.resolvers if self.dns else [])]
        hosts = [urlsplit(h.url).hostname or "" for h in self.http]
        peers += [("http", host) for host in hosts if _is_ip(host)]
        for key, address in peers:
            if ":" in address and self.source_address and not self.source_address6:
                raise ValueError(
                    f"{key}: {address} is IPv6 but the link has only an IPv4 source_address; "
                    "add source_address6 (this uplink's IPv6 address)"
                )
            if ":" not in address and self.source_address6 and not self.source_address:
                raise ValueError(
                    f"{key}: {address} is IPv4 but the link has only source_address6; "
                    "add source_address"
                )


class Config(_Strict):
    site: Site
    listen: str = "0.0.0.0:9877"
    state_dir: str = "/var/lib/erozgar-agent"
    # Site-local device profiles in modbus/, snmp/, snmp-ups/ (collectors/packaged.py): they
    # join the packaged ones and override those of the same name.
    profile_dir: str = PROFILE_DIR
    # Central endpoint vmagent remote-writes to; `check` tests that it can be reached.
    remote_write_url: Annotated[str, Field(pattern=r"^https?://[^/\s]+")] | None = None
    host: HostSettings = HostSettings()
    snmp: list[SnmpDevice] = []
    modbus: list[ModbusDevice] = []
    genset: list[GensetDevice] = []
    inverter: list[InverterDevice] = []
    nut: list[NutDevice] = []
    links: list[LinkSettings] = []
    # Endpoint TLS, basic auth and IP allow-list (exporters/web_config.py); --web.config.file wins.
    web_config_file: str | None = None

    @field_validator("listen")
    @classmethod
    def _listen_parses(cls, value: str) -> str:
        split_host_port(value, 9877)
        return value

    @field_validator("remote_write_url")
    @classmethod
    def _url_host(cls, value: str | None) -> str | None:
        if value is not None:  # the pattern has checked the scheme; user:password@ may precede
            split_host_port(urlsplit(value).netloc.rpartition("@")[2], 443)
        return value

    @property
    def listen_host_port(self) -> tuple[str, int]:
        return split_host_port(self.listen, 9877)

    @property
    def device_lists(self) -> list[tuple[str, list[DeviceSettings]]]:
        """(key, devices) for every list of devices above, in the order they are declared."""
        return [
            (key, getattr(self, key))
            for key, field in type(self).model_fields.items()
            if _lists_devices(field.annotation)
        ]

    @model_validator(mode="after")
    def _unique_names(self) -> Config:
        seen: dict[str, str] = {}
        for section, devices in self.device_lists:
            for i, device in enumerate(devices):
                where = f"{section}[{i}].name"
                if device.name in seen:
                    used_by = seen[device.name]
                    raise ValueError(f"{where}: device name {device.name!r} is used by {used_by}")
                seen[device.name] = where
        return self

    @model_validator(mode="after")
    def _modbus_gateways_agree(self) -> Config:
        """Devices on one gateway share its connection, so they must frame bytes alike."""
        first: dict[tuple[str, str, int], tuple[str, ModbusConnection]] = {}
        listed = [
            (f"{key}[{i}]", d)
            for key in ("modbus", "genset")
            for i, d in enumerate(getattr(self, key))
        ]
        for where, device in listed:
            link = device.link
            other_where, other = first.setdefault(link.key, (where, device))
            if other.link != link:
                raise ValueError(
                    f"{where}.transport: {other_where} ({other.name}) reaches the same "
                    f"gateway as {other.link.kind} {other.link}; devices on one gateway must "
                    "use the same transport and serial settings"
                )
        return self

    @model_validator(mode="after")
    def _powered_by_refers_to_devices(self) -> Config:
        names = {d.name for _, devices in self.device_lists for d in devices}
        for i, device in enumerate(self.snmp):
            supply = device.powered_by
            if supply is None or supply == "mains":
                continue
            if supply == device.name or supply not in names:
                known = ", ".join(sorted(names - {device.name})) or "none configured"
                raise ValueError(
                    f"snmp[{i}].powered_by: {supply!r} is not another device of this config "
                    f'(devices: {known}; or "mains" for no UPS)'
                )
        return self

    @model_validator(mode="after")
    def _links_refer_to_devices(self) -> Config:
        names = [link.name for link in self.links]
        devices = {d.name: d for d in self.snmp}
        for i, link in enumerate(self.links):
            if link.name in names[:i]:
                raise ValueError(f"links[{i}].name: link name {link.name!r} is used twice")
            if link.device is not None and link.device not in devices:
                known = ", ".join(devices) or "none configured"
                raise ValueError(
                    f"links[{i}].device: no snmp device named {link.device!r} (snmp devices: "
                    f"{known})"
                )
            ports = [p.name for p in devices[link.device].interfaces] if link.device else []
            if link.interface is not None and ports and link.interface not in ports:
                raise ValueError(
                    f"links[{i}].interface: {link.device} lists no port {link.interface!r} "
                    f"under interfaces: (listed: {', '.join(ports)})"
                )
            test = link.capacity_test
            port = self.link_port(link)
            for key in ("capacity_down_mbps", "capacity_up_mbps"):
                if test is not None and getattr(test, key) and port and getattr(port, key):
                    raise ValueError(
                        f"links[{i}].capacity_test.{key}: {link.device} port {port.name} "
                        "states the contract already; give it in one place"
                    )
        return self

    def link_port(self, link: LinkSettings) -> InterfaceSettings | None:
        """The settings of the router port that carries `link`, if the config lists it."""
        for device in self.snmp:
            if device.name == link.device:
                return next((p for p in device.interfaces if p.name == link.interface), None)
        return None


def _lists_devices(annotation: object) -> bool:
    """Is this a field type list[X] for some kind of device settings X?"""
    args = get_args(annotation)
    return (
        get_origin(annotation) is list
        and isinstance(args[0], type)
        and issubclass(args[0], DeviceSettings)
    )


def expand_env(value: object, path: str, problems: list[str]) -> object:
    """Replace ${VAR} and ${cred:NAME} in every string; a missing one is a problem naming the
    key."""
    if isinstance(value, dict):
        return {
            k: expand_env(v, f"{path}.{key_text(k)}" if path else key_text(k), problems)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [expand_env(v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    if isinstance(value, str):

        def lookup(match: re.Match[str]) -> str:
            credential, name = match.groups()
            if credential:
                try:
                    return read_credential(credential)
                except ValueError as exc:
                    problems.append(f"{path}: {exc}")
                    return ""
            if name not in os.environ:
                problems.append(f"{path}: environment variable {name} is not set")
                return ""
            return os.environ[name]

        return _ENV_REF.sub(lookup, value)
    return value


def parse_config(data: object, source: str = "config") -> Config:
    """Validate already-parsed YAML; raises ConfigError listing every problem."""
    if not isinstance(data, dict):
        raise ConfigError([f"{source}: the top level must be a mapping with site:, snmp:, modbus:"])
    problems: list[str] = []
    expanded = expand_env(data, "", problems)
    # Modbus devices name profiles that may be in the profile_dir this same config gives
    profile_dir = expanded.get("profile_dir") if isinstance(expanded, dict) else None
    context = {"profile_dir": profile_dir if isinstance(profile_dir, str) else PROFILE_DIR}
    try:
        config = Config.model_validate(expanded, context=context)
    except ValidationError as exc:
        problems += schema_problems(exc, unknown_key=_UNKNOWN_KEY)
        config = None
    if problems or config is None:
        raise ConfigError([f"{source}: {p}" for p in problems])
    site = site_profile_problems(config.profile_dir)
    if site:
        raise ConfigError(site)  # each line names its profile file
    return config


def site_profile_problems(profile_dir: str) -> list[str]:
    """Every problem of the site's profiles, one line each naming the file and the key."""
    root = Path(profile_dir)
    if not root.is_dir():
        return []
    from collectors.modbus.profile import MODBUS
    from collectors.packaged import site_problems
    from collectors.snmp.profile import SNMP
    from collectors.snmp.ups import SNMP_UPS

    families = (MODBUS, SNMP, SNMP_UPS)
    folders = {family.folder for family in families}
    try:
        found = [
            f"{path}: not read: profiles go in {', '.join(f'{f}/' for f in sorted(folders))}"
            for path in sorted(root.iterdir())
            if path.name not in folders
        ]
        return found + [line for family in families for line in site_problems(family, root)]
    except OSError as exc:  # the agent's user may not read it
        return [f"{exc.filename}: cannot read the profile directory ({exc.strerror})"]


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
