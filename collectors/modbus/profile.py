"""Modbus UPS profiles: register maps as YAML data, validated into frozen models at load.

A profile names the register blocks to read (whole documented blocks: APC answers "illegal data
address" when a read crosses a gap) and where each NUT variable and status bit lives inside them::

    name: apc-smart-ups
    source: APC AN176 as NUT's apc_modbus.c reads it
    byte_order: ABCD                  # default word/byte order of 32-bit values
    info: {device.mfr: APC}           # constants copied into every reading
    blocks:
      - {name: dynamic, register: holding, address: 128, count: 44}
    fields:
      - {name: battery.charge, address: 130, type: u16, binary_point: 9, valid: [0, 100]}
    bitfields:
      - {address: 0, type: u32, bits: {1: OL, 2: OB}}

Addresses are 0-based PDU addresses (what goes on the wire), never Modicon 4xxxx numbers.
"""

from __future__ import annotations

import itertools
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, model_validator

from collectors.modbus.inverter import vocabulary_error
from collectors.packaged import Family, ProfileHeader, load, parse, profile_names
from collectors.readings import GensetReading, InverterReading, Role, UpsReading, role_read_as
from collectors.schema import STRICT

Register = Literal["holding", "input"]
ByteOrder = Literal["ABCD", "CDAB", "BADC", "DCBA"]
FieldType = Literal["u16", "s16", "u32", "s32", "f32", "string", "date"]

# NUT ups.status vocabulary (docs/new-drivers.txt) plus TEST and ECO, which newer drivers set.
UPS_TOKENS = (
    "OL", "OB", "LB", "HB", "RB", "CHRG", "DISCHRG", "BYPASS", "CAL", "OFF", "OVER", "TRIM",
    "BOOST", "FSD", "TEST", "ALARM", "ECO",
)  # fmt: skip
# A generator controller's words (role genset): engine running, generator breaker closed (on
# load), mains available as the controller measures it, and its alarm classes.
GENSET_TOKENS = ("RUNNING", "ON_LOAD", "MAINS_OK", "SHUTDOWN", "TRIP", "WARNING")
# Any word a bitfield may name; the profile's role says which of them it may use.
StatusToken = Literal[UPS_TOKENS + GENSET_TOKENS]  # type: ignore[valid-type]
TOKENS_OF_ROLE = {"ups": frozenset(UPS_TOKENS), "genset": frozenset(GENSET_TOKENS)}

# Registers per value; strings say their own length.
WIDTH: dict[str, int] = {"u16": 1, "s16": 1, "date": 1, "u32": 2, "s32": 2, "f32": 2}
NUMERIC_TYPES = frozenset({"u16", "s16", "u32", "s32", "f32"})
MAX_READ = 125  # registers per FC03/FC04 request (Modbus application protocol, 6.3)

_NAME = re.compile(r"^[a-z0-9]+(\.[a-z0-9]+)+$")  # NUT variable names: battery.charge
_NAMED = ("fields",)  # errors in fields[3] show its name: fields[3] (battery.charge)


class _Model(BaseModel):
    model_config = STRICT


class Block(_Model):
    """One read request: `count` registers from `address` with FC03 (holding) or FC04 (input)."""

    name: str
    # YAML key "register"; the attribute is `table` because pydantic models own `register`.
    table: Register = Field(default="holding", alias="register")
    address: int = Field(ge=0, le=0xFFFF)
    count: int = Field(ge=1, le=MAX_READ)

    @property
    def end(self) -> int:
        return self.address + self.count

    @model_validator(mode="after")
    def _fits_address_space(self) -> Block:
        if self.end > 0x10000:
            raise ValueError(f"block {self.name!r} runs past register 65535")
        return self


class FieldSpec(_Model):
    """One NUT variable: numbers go to UpsReading.values, strings and dates to .info."""

    name: str = Field(pattern=_NAME.pattern)
    table: Register = Field(default="holding", alias="register")
    address: int = Field(ge=0, le=0xFFFF)
    type: FieldType
    length: int | None = Field(default=None, ge=1, le=MAX_READ)  # strings only, in registers
    byte_order: ByteOrder | None = None  # None: the profile's byte_order
    scale: float | None = None  # decimal multiplier: 0.1 turns 2301 into 230.1
    binary_point: int | None = Field(default=None, ge=0, le=31)  # APC: raw / 2**binary_point
    offset: float = 0.0  # added after scaling (Deye temperatures are stored +100)
    not_available: tuple[int, ...] | None = None  # raw register bits; None: per-type default
    valid: tuple[float, float] | None = None  # plausible [min, max] in the final unit
    # SunSpec: address of the signed *_SF register (same table); value = raw * 10**SF * scale.
    scale_register: int | None = Field(default=None, ge=0, le=0xFFFF)
    # u16 codes as NUT words for .info: `map` by value (unlisted -> invalid), `map_bits` by
    # the lowest listed bit that is set (none set -> nothing to report).
    map: dict[int, str] | None = None
    map_bits: dict[int, str] | None = None

    @property
    def width(self) -> int:
        return self.length if self.type == "string" and self.length else WIDTH[self.type]

    @model_validator(mode="after")
    def _consistent(self) -> FieldSpec:
        if self.type == "string" and self.length is None:
            raise ValueError("length: a string needs its length in registers")
        if self.type != "string" and self.length is not None:
            raise ValueError(f"length: only strings have a length, not {self.type}")
        if self.scale is not None and self.binary_point is not None:
            raise ValueError("scale: give scale or binary_point, not both")
        if self.scale == 0:
            raise ValueError("scale: must not be 0")
        if self.map is not None and self.map_bits is not None:
            raise ValueError("map: give map or map_bits, not both")
        if (self.map is not None or self.map_bits is not None) and self.type != "u16":
            raise ValueError(f"map: only u16 codes map to words, not {self.type}")
        if self.map_bits is not None and any(not 0 <= bit < 16 for bit in self.map_bits):
            raise ValueError("map_bits: bits of a u16 are 0 to 15")
        numeric_only = {
            "scale_register": self.scale_register is not None,
            "scale": self.scale is not None,
            "binary_point": self.binary_point is not None,
            "offset": self.offset != 0.0,
            "valid": self.valid is not None,
        }
        for key, given in numeric_only.items():
            if given and self.type not in NUMERIC_TYPES:
                raise ValueError(f"{key}: only numeric fields take {key}, not {self.type}")
        if self.valid is not None and self.valid[0] > self.valid[1]:
            raise ValueError(f"valid: min {self.valid[0]} is above max {self.valid[1]}")
        if self.not_available is not None:
            limit = 1 << (16 * self.width)
            for raw in self.not_available:
                if not 0 <= raw < limit:
                    raise ValueError(f"not_available: {raw} does not fit in {self.type}")
        if self.address + self.width > 0x10000:
            raise ValueError("address: value runs past register 65535")
        return self


class Bitfield(_Model):
    """A status register whose bits map to NUT status tokens; bit 0 is the least significant."""

    table: Register = Field(default="holding", alias="register")
    address: int = Field(ge=0, le=0xFFFF)
    type: Literal["u16", "u32"] = "u16"
    byte_order: ByteOrder | None = None
    bits: dict[int, StatusToken] = Field(default_factory=dict)
    # An enum register instead of bits: the whole value selects a token (Growatt status 2 -> OB).
    map: dict[int, StatusToken] = Field(default_factory=dict)

    @property
    def width(self) -> int:
        return WIDTH[self.type]

    @model_validator(mode="after")
    def _bits_fit(self) -> Bitfield:
        if not self.bits and not self.map:
            raise ValueError("bits: give bits or map")
        for bit in self.bits:
            if not 0 <= bit < 16 * self.width:
                raise ValueError(f"bits: bit {bit} does not exist in a {self.type}")
        return self


class ModbusProfile(ProfileHeader):
    """A whole device map. Validation guarantees every value can be cut out of a read block."""

    # What the device is: the decoder fills the role's reading (UpsReading, GensetReading, or
    # an InverterReading from the inverter vocabulary, collectors/modbus/inverter.py).
    role: Annotated[
        Role,
        AfterValidator(lambda role: role_read_as(role, UpsReading, GensetReading, InverterReading)),
    ]
    byte_order: ByteOrder = "ABCD"
    info: dict[str, str] = Field(default_factory=dict)
    blocks: tuple[Block, ...] = Field(min_length=1)
    fields: tuple[FieldSpec, ...] = ()
    bitfields: tuple[Bitfield, ...] = ()
    # Fields decoded (for `check`, or kept for later) but deliberately not exported: name -> why.
    not_exported: dict[str, str] = Field(default_factory=dict)

    @property
    def known_flags(self) -> frozenset[str]:
        return frozenset(
            token for bf in self.bitfields for token in (*bf.bits.values(), *bf.map.values())
        )

    def block_for(self, table: str, address: int, width: int) -> Block | None:
        """The block that holds registers [address, address + width), if any."""
        for block in self.blocks:
            if block.table == table and block.address <= address <= block.end - width:
                return block
        return None

    @model_validator(mode="after")
    def _cross_checks(self) -> ModbusProfile:
        ordered = sorted(self.blocks, key=lambda b: (b.table, b.address))
        for prev, block in itertools.pairwise(ordered):
            if prev.table == block.table and block.address < prev.end:
                raise ValueError(f"blocks: {block.name!r} overlaps {prev.name!r}")
        seen: set[str] = set(self.info)
        for i, spec in enumerate(self.fields):
            where = f"fields[{i}] ({spec.name})"
            if spec.name in seen:
                raise ValueError(f"{where}.name: {spec.name} is defined twice")
            seen.add(spec.name)
            if self.block_for(spec.table, spec.address, spec.width) is None:
                raise ValueError(
                    f"{where}.address: {spec.table} {spec.address}+{spec.width} "
                    "is not inside one declared block"
                )
            sf = spec.scale_register
            if sf is not None and self.block_for(spec.table, sf, 1) is None:
                raise ValueError(
                    f"{where}.scale_register: {spec.table} {sf} is not inside a declared block"
                )
        if self.role == "inverter":
            self._inverter_vocabulary()
        for name in self.not_exported:
            if name not in seen:
                raise ValueError(f"not_exported: {name} is not a field of this profile")
        tokens = TOKENS_OF_ROLE.get(self.role, frozenset())  # an inverter has none
        for i, bf in enumerate(self.bitfields):
            foreign = sorted({*bf.bits.values(), *bf.map.values()} - tokens)
            if foreign:
                raise ValueError(
                    f"bitfields[{i}]: {', '.join(foreign)} is not a {self.role} status word"
                )
            if self.block_for(bf.table, bf.address, bf.width) is None:
                raise ValueError(
                    f"bitfields[{i}].address: {bf.table} {bf.address}+{bf.width} "
                    "is not inside one declared block"
                )
        return self

    def _inverter_vocabulary(self) -> None:
        for i, spec in enumerate(self.fields):
            error = None if spec.name in self.not_exported else vocabulary_error(spec.name)
            if error:
                raise ValueError(f"fields[{i}].name: {error}")
        if self.bitfields:
            raise ValueError("bitfields: an inverter says its mode with a load.source map field")


MODBUS = Family("modbus", ModbusProfile, "Modbus", _NAMED)


def parse_profile(text: str, source: str) -> ModbusProfile:
    """Validate profile YAML; `source` (a file name) goes into error messages."""
    return parse(text, source, ModbusProfile, named=_NAMED)


def available_profiles(site: str | None = None) -> list[str]:
    """Names of the Modbus profiles, packaged and in `site` (None: the site directory in
    force), as file names without .yaml."""
    return profile_names(MODBUS, site)


def load_profile(name: str, site: str | None = None) -> ModbusProfile:
    """<profile_dir>/modbus/<name>.yaml, else collectors/profiles/modbus/<name>.yaml (`site`
    None: the profile_dir in force)."""
    return load(MODBUS, name, site)
