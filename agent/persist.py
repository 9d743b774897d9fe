"""Small JSON state files that survive restarts, crashes and full disks.

One file per device under the config's `state_dir` (`ups-<device>.json`). A save writes a
temporary file in the same directory, fsyncs it, renames it over the old one and fsyncs the
directory, so a crash or `kill -9` at any instant leaves either the old or the new file, never a
torn one (rename is atomic within one filesystem on POSIX).

Nothing here is fatal. A file that does not parse is logged, counted and renamed aside to
`<name>.corrupt-<UTC time>` so the agent starts fresh and a person can look at it later; a
directory that cannot be written (disk full, read-only mount, wrong owner) is logged once per
change and counted, while polling and metrics go on from memory::

    store = JsonStateFile(Path("/var/lib/erozgar-agent") / "ups-ups-rack.json")
    data = store.load()            # {} when absent or corrupt
    store.save({"version": 1, ...})  # False when it could not be written
    store.errors                   # Counter: corrupt, read, write
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def state_file(state_dir: str | Path, kind: str, device: str) -> Path:
    """Path of one device's state file; device names are already restricted by the config."""
    return Path(state_dir) / f"{kind}-{_UNSAFE.sub('_', device)}.json"


class JsonStateFile:
    """Load and atomically save one JSON object; errors are counted and logged, never raised."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.errors: Counter[str] = Counter()  # corrupt | read | write
        self._write_failing = False

    def load(self) -> dict[str, Any]:
        """The saved object, or {} when there is none or it could not be used."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            self.errors["read"] += 1
            log.error("state file %s cannot be read (%s); starting fresh", self.path, exc.strerror)
            return {}
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            self.set_aside(f"not valid JSON ({exc})")
            return {}
        if not isinstance(data, dict):
            self.set_aside("not a JSON object")
            return {}
        return data

    def set_aside(self, why: str) -> None:
        """Count a corrupt file and move it out of the way, keeping it for inspection."""
        self.errors["corrupt"] += 1
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        try:
            os.replace(self.path, aside)
        except OSError as exc:
            log.error(
                "state file %s is corrupt (%s) and cannot be moved aside (%s); starting fresh",
                self.path,
                why,
                exc.strerror,
            )
            return
        log.error(
            "state file %s is corrupt (%s); kept as %s, starting fresh", self.path, why, aside
        )

    def save(self, data: dict[str, Any]) -> bool:
        """Write `data` atomically; False (logged once per failure streak) when it failed."""
        text = json.dumps(data, separators=(",", ":"), sort_keys=True)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            replace_atomically(self.path, text)
        except OSError as exc:
            self.errors["write"] += 1
            if not self._write_failing:
                log.error(
                    "state file %s cannot be written (%s); going on from memory, "
                    "battery history will not survive a restart until this is fixed",
                    self.path,
                    exc.strerror or type(exc).__name__,
                )
            self._write_failing = True
            return False
        if self._write_failing:
            log.info("state file %s written again", self.path)
            self._write_failing = False
        return True


def replace_atomically(path: Path, text: str) -> None:
    """Put `text` in `path` so that a crash leaves the old or the new file, never a torn one:
    a temporary file beside it, fsynced, renamed over it, the directory fsynced. OSError when
    it could not (the temporary file is gone then)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _fsync_dir(directory: Path) -> None:
    # The rename is only durable once the directory entry is on disk.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
