"""SNMP values as the collectors see them: plain Python, whichever transport read them.

int (`Counter64` for 64-bit counters, so callers can refuse a Counter32 where a Counter64
belongs), str (UTF-8 text), bytes (anything else), `Oid` (dotted string). noSuchObject,
noSuchInstance and NULL arrive as None; endOfMibView as END_OF_MIB_VIEW, which ends a walk.
"""

from __future__ import annotations

from typing import Final

Oidt = tuple[int, ...]


class Counter64(int):
    """An int that arrived as SNMP Counter64 (ifHC* columns must be one)."""


class Oid(str):
    """A dotted OID string that arrived as an OBJECT IDENTIFIER value."""


class EndOfMibView:
    """The agent has nothing after this OID (RFC 3416 4.2.3)."""

    def __repr__(self) -> str:
        return "END_OF_MIB_VIEW"


END_OF_MIB_VIEW: Final = EndOfMibView()

Value = int | str | bytes
VarBind = tuple[Oidt, Value | EndOfMibView | None]


def parse_oid(oid: str) -> Oidt:
    return tuple(int(part) for part in oid.strip(".").split("."))


def format_oid(oid: Oidt) -> str:
    return ".".join(map(str, oid))
