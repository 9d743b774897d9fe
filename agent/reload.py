"""Config reload on SIGHUP or POST /-/reload: a broken file changes nothing, a good one applies.

The outcome is logged and exported (`erozgar_agent_config_reload_success`, and the time of the
latest good load in `erozgar_agent_config_last_reload_success_timestamp_seconds`), the way
Prometheus itself reports its reloads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from collectors.packaged import use_site_dir

from .config import Config, ConfigError, load_config
from .fleet import Fleet
from .secrets import warn_if_readable_by_others

log = logging.getLogger(__name__)


@dataclass
class ReloadStatus:
    success: bool = True
    last_success: float = 0.0  # unix time of the latest good load (the start counts)
    reloads: int = 0  # attempts, good or bad


class Reloader:
    """Re-reads `path` and moves `fleet` to it. One reload at a time."""

    def __init__(
        self,
        path: str | Path | None,
        fleet: Fleet,
        config: Config,
        on_applied: Callable[[Config], None] | None = None,
    ) -> None:
        self.path = None if path is None else Path(path)
        self.fleet = fleet
        self.config = config
        self.status = ReloadStatus(True, time.time())
        self._on_applied = on_applied
        self._lock = asyncio.Lock()

    async def reload(self) -> tuple[bool, str]:
        """(applied, one-line summary). The summary names keys, never their values."""
        async with self._lock:
            self.status.reloads += 1
            if self.path is None:
                return self._failed(["the agent was started without a config file"])
            try:
                config = load_config(self.path)
            except ConfigError as exc:
                return self._failed(exc.problems)
            warn_if_readable_by_others(self.path, config)
            use_site_dir(config.profile_dir)  # and re-read site profiles an installer edited
            changes = await self.fleet.apply(config)
            self.config = config
            if self._on_applied is not None:
                self._on_applied(config)
            self.status.success, self.status.last_success = True, time.time()
            summary = f"config reloaded from {self.path}: {changes}"
            log.info("%s", summary)
            return True, summary

    def _failed(self, problems: list[str]) -> tuple[bool, str]:
        self.status.success = False
        for problem in problems:
            log.error("reload: %s", problem)
        log.error("reload failed (%d problems); the running config stays in force", len(problems))
        return False, f"reload failed ({len(problems)} problems); see the agent's log"
