#!/usr/bin/env python3
"""Point a virtualenv built in a staging directory at the path it is installed to.

    fix-venv-paths.py STAGED_VENV FINAL_VENV

pip writes the staging path into the console scripts' `#!` lines (a `/bin/sh` trampoline when
that path is too long for one) and venv into pyvenv.cfg;
the package must carry the final one. The scripts' RECORD entries get the new hashes, and
files the build deleted (direct_url.json, which names the build directory) leave RECORD:
RECORD describes the files as shipped and names no build path, so two builds give the same
bytes. (dh-virtualenv does the same rewrite.)
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import sys
from pathlib import Path

# What pip (distlib) writes instead of a `#!` line when the interpreter's path is longer than
# one may be (127 bytes): a /bin/sh line, then `'''exec' PYTHON "$0" "$@"` and `' '''`.
TRAMPOLINE = b"#!/bin/sh\n'''exec' "


def record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def fix_scripts(venv: Path, final: str) -> dict[str, bytes]:
    """The rewritten scripts' new contents, by name."""
    changed = {}
    for script in sorted((venv / "bin").iterdir()):
        if script.is_symlink() or not script.is_file():
            continue
        data = script.read_bytes()
        if data.startswith(TRAMPOLINE):  # its 3 lines stand for one `#!` line
            data = b"#!python\n" + data.split(b"\n", 3)[3]
        first, newline, rest = data.partition(b"\n")
        if first.startswith(b"#!") and b"python" in first:
            data = f"#!{final}/bin/python3".encode() + newline + rest
            script.write_bytes(data)
            changed[script.name] = data
    return changed


def fix_records(venv: Path, changed: dict[str, bytes]) -> None:
    for record in venv.glob("lib/python3*/site-packages/*.dist-info/RECORD"):
        site = record.parent.parent
        rows = [
            row
            for row in csv.reader(io.StringIO(record.read_text()))
            if (site / row[0]).exists() or (site / row[0]).is_symlink()
        ]
        for row in rows:
            path = row[0]
            if path.startswith("../../../bin/") and path.rsplit("/", 1)[1] in changed:
                data = changed[path.rsplit("/", 1)[1]]
                row[1:3] = [record_hash(data), str(len(data))]
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(rows)
        record.write_text(text.getvalue())


def fix_config(venv: Path, final: str) -> None:
    cfg = venv / "pyvenv.cfg"
    lines = [
        f"command = /usr/bin/python3 -m venv {final}" if line.startswith("command =") else line
        for line in cfg.read_text().splitlines()
    ]
    cfg.write_text("\n".join(lines) + "\n")


def main(argv: list[str]) -> int:
    venv, final = Path(argv[1]), argv[2]
    fix_records(venv, fix_scripts(venv, final))
    fix_config(venv, final)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
