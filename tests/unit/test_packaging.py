"""The package's venv gets what the tests ran with: packaging/constraints.txt pins the
dependencies' dependencies at the versions installed in this (the test) venv."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

CONSTRAINTS = Path(__file__).resolve().parents[2] / "packaging" / "constraints.txt"


def test_constraints_are_the_tested_versions() -> None:
    pins = re.findall(r"^([\w.-]+)==(\S+)$", CONSTRAINTS.read_text(), re.MULTILINE)
    assert len(pins) >= 5
    assert {name: version(name) for name, _ in pins} == dict(pins)
