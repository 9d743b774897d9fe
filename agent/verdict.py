"""What `check` reports: steps judged PASS / WARN / FAIL, grouped per device."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Status = Literal["PASS", "WARN", "FAIL"]
RANK = {"PASS": 0, "WARN": 1, "FAIL": 2}


@dataclass
class Step:
    name: str
    status: Status
    detail: str
    hint: str = ""


@dataclass
class DeviceVerdict:
    name: str
    kind: str
    checks: list[Step] = field(default_factory=list)

    @property
    def status(self) -> Status:
        worst = max((RANK[s.status] for s in self.checks), default=0)
        return next(k for k, v in RANK.items() if v == worst)  # type: ignore[return-value]
