"""The package's venv gets what the tests ran with: packaging/constraints.txt pins the
dependencies' dependencies at the versions installed in this (the test) venv; and its console
scripts name the installed interpreter, however long the staging path was."""

from __future__ import annotations

import importlib.util
import re
from importlib.metadata import version
from pathlib import Path

PACKAGING = Path(__file__).resolve().parents[2] / "packaging"
CONSTRAINTS = PACKAGING / "constraints.txt"


def test_constraints_are_the_tested_versions() -> None:
    pins = re.findall(r"^([\w.-]+)==(\S+)$", CONSTRAINTS.read_text(), re.MULTILINE)
    assert len(pins) >= 5
    assert {name: version(name) for name, _ in pins} == dict(pins)


def test_scripts_name_the_installed_python_after_a_shebang_or_a_trampoline(tmp_path: Path):
    """pip writes a /bin/sh trampoline when the staging venv's path is over 127 bytes (as under
    pytest-xdist's temporary directories): the package shipped it, naming the build path."""
    spec = importlib.util.spec_from_file_location("fix_venv_paths", PACKAGING / "fix-venv-paths.py")
    assert spec is not None and spec.loader is not None
    fix = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fix)
    body = "# -*- coding: utf-8 -*-\nfrom agent.cli import main\n"
    staged = f"{tmp_path}/{'x' * 120}/venv/bin/python"
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "short").write_text(f"#!{tmp_path}/venv/bin/python\n{body}")
    (tmp_path / "bin" / "long").write_text(
        f"#!/bin/sh\n'''exec' {staged} \"$0\" \"$@\"\n' '''\n{body}"
    )
    changed = fix.fix_scripts(tmp_path, "/opt/erozgar-agent/venv")
    expected = f"#!/opt/erozgar-agent/venv/bin/python3\n{body}"
    assert {name: data.decode() for name, data in changed.items()} == {
        "long": expected,
        "short": expected,
    }
    assert (tmp_path / "bin" / "long").read_text() == expected
