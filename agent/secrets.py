"""Secrets in the config: where they may come from, and a warning when the file gives them away.

A secret (community, SNMPv3 key, NUT password: every `SecretStr` in the config) can be written
in the file, taken from the environment with `${NAME}`, or read from a systemd credential with
`${cred:NAME}`: the file $CREDENTIALS_DIRECTORY/NAME (LoadCredential= / SetCredential= in the
unit), trailing newline dropped. A secret written in a file that other users can read draws one
warning naming the file and the fix.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, SecretStr

log = logging.getLogger(__name__)


def read_credential(name: str) -> str:
    """The systemd credential `name`; ValueError (one line, no secret) when it is missing."""
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        raise ValueError(
            f"credential {name}: $CREDENTIALS_DIRECTORY is not set (run under systemd with "
            f"LoadCredential={name}:/path/to/file)"
        )
    if "/" in name or name in (".", ".."):
        raise ValueError(f"credential {name!r}: a credential name cannot contain '/'")
    try:
        return (Path(directory) / name).read_text(encoding="utf-8").removesuffix("\n")
    except OSError as exc:
        raise ValueError(
            f"credential {name}: cannot read $CREDENTIALS_DIRECTORY/{name} ({exc.strerror})"
        ) from None
    except UnicodeDecodeError:
        raise ValueError(f"credential {name}: the file is not UTF-8 text") from None


def secrets_of(model: BaseModel) -> Iterator[str]:
    """Every non-empty SecretStr value anywhere in `model`."""
    for name in type(model).model_fields:
        yield from _secrets_in(getattr(model, name))


def _secrets_in(value: object) -> Iterator[str]:
    if isinstance(value, SecretStr):
        if value.get_secret_value():
            yield value.get_secret_value()
    elif isinstance(value, BaseModel):
        yield from secrets_of(value)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _secrets_in(item)


def warn_if_readable_by_others(path: str | Path, config: BaseModel) -> bool:
    """Warn (once per call) when `path` is world-readable and holds a secret as plain text.
    Secrets that come from ${ENV} or ${cred:...} are not in the file, so they do not count."""
    try:
        mode = os.stat(path).st_mode
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    if not mode & stat.S_IROTH or not any(s in text for s in secrets_of(config)):
        return False
    log.warning("%s holds secrets and other users can read it; run: chmod 600 %s", path, path)
    return True
