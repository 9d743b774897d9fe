"""Device profiles: YAML files in collectors/profiles/<family>/ (shipped with the agent) and in
the site's profile directory (config `profile_dir`, same subfolders), each read into its
family's strict model once.

    MODBUS = Family("modbus", ModbusProfile, "Modbus")
    profile_names(MODBUS)                -> ["apc-smart-ups", ...]
    load(MODBUS, "apc-smart-ups")        -> ModbusProfile(name="apc-smart-ups", ...)
    use_site_dir("/etc/erozgar-agent/profiles")   # from now on site profiles join and override
    site_problems(MODBUS, "/etc/erozgar-agent/profiles")  -> ["/etc/.../m.yaml: blocks: ..."]

Every family's model starts from ProfileHeader, so the keys they share are named the same way
in each: `name` (the file's name), `description`, `source`. Every error is a ProfileError of one
line naming the file and the key.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Generic, TypeVar

import yaml
from pydantic import BaseModel, Field, ValidationError

from .schema import STRICT, problems, summary

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")  # a file name, never a path


class ProfileHeader(BaseModel):
    """The keys every profile family has."""

    model_config = STRICT

    name: str = Field(pattern=_NAME.pattern)  # repeats the file's name
    description: str = ""
    source: str = Field(min_length=1)  # where the map comes from: MIB, vendor document, driver


Model = TypeVar("Model", bound=ProfileHeader)


@dataclass(frozen=True)
class Family(Generic[Model]):
    """One kind of profile: its folder (packaged and on site), model, and name in messages."""

    folder: str
    model: type[Model]
    kind: str
    named: tuple[str, ...] = ()  # lists whose items an error shows by name (schema.problems)


class ProfileError(ValueError):
    """A profile is missing or invalid; the message names the file and the offending key."""


# The site's profile directory in force (None: packaged profiles only). Process-wide because
# profiles are read deep in the collectors; set from the config each time one is loaded.
_site: Path | None = None


def use_site_dir(path: str | Path | None) -> None:
    """Profiles in path/<family>/ join the packaged ones and override those of the same name.
    Forgets every profile read so far, so a reload reads edited site profiles afresh."""
    global _site
    _site = None if path is None else Path(path)
    _read.cache_clear()
    _all.cache_clear()


def profile_names(family: Family[Model], site: str | Path | None = None) -> list[str]:
    """The family's profiles, packaged and those in `site` (None: the site directory in
    force), as file names without .yaml."""
    return _names(family, _site if site is None else Path(site))


def parse(text: str, source: str, model: type[Model], *, named: Collection[str] = ()) -> Model:
    """Validate profile YAML; `source` (a file name) starts every error message, the first
    problem and how many more there are."""
    profile, found = _validated(text, source, model, named)
    if profile is None:
        raise ProfileError(summary(found))
    return profile


def load(family: Family[Model], name: str, site: str | Path | None = None) -> Model:
    """The profile `name`: the site's <name>.yaml if there is one, else the packaged one
    (`site` None: the site directory in force)."""
    return _read(family, name, _site if site is None else Path(site))


def load_all(family: Family[Model]) -> tuple[Model, ...]:
    """Every profile of the family, read once (until use_site_dir)."""
    return _all(family, _site)


def site_problems(family: Family[Model], site: str | Path) -> list[str]:
    """Every problem of the family's profiles in `site`, one line each naming file and key."""
    folder = Path(site) / family.folder
    found = [
        f"{path}: not read: a profile's file name ends in .yaml"
        for path in sorted(folder.iterdir() if folder.is_dir() else ())
        if path.suffix != ".yaml"
    ]
    for path in _site_files(family, Path(site)):
        if not _NAME.match(path.stem):
            found.append(f"{path}: a profile's file name is lowercase letters, digits, - and _")
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            found.append(f"{path}: cannot read the profile ({exc})")
            continue
        profile, lines = _validated(text, str(path), family.model, family.named)
        found += lines
        if profile is not None and (wrong := _misnamed(profile, path.stem, str(path))):
            found.append(wrong)
    return found


def _misnamed(profile: ProfileHeader, name: str, source: str) -> str:
    """The problem when a profile's `name` is not its file's name, else ""."""
    return (
        "" if profile.name == name else f"{source}: name: says {profile.name!r}, expected {name!r}"
    )


def _names(family: Family[Model], site: Path | None) -> list[str]:
    packaged = resources.files("collectors").joinpath("profiles", family.folder)
    names = {p.name.removesuffix(".yaml") for p in packaged.iterdir() if p.name.endswith(".yaml")}
    names |= {p.stem for p in _site_files(family, site) if _NAME.match(p.stem)}
    return sorted(names)


def _site_files(family: Family[Model], site: Path | None) -> list[Path]:
    folder = None if site is None else site / family.folder
    return sorted(folder.glob("*.yaml")) if folder is not None and folder.is_dir() else []


def _validated(
    text: str, source: str, model: type[Model], named: Collection[str]
) -> tuple[Model | None, list[str]]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return None, [f"{source}: not valid YAML: {' '.join(str(exc).split())}"]
    if not isinstance(data, dict):
        return None, [f"{source}: expected a mapping of profile keys"]
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return None, [f"{source}: {line}" for line in problems(exc, data, named=named)]


@cache
def _read(family: Family[Model], name: str, site: Path | None) -> Model:
    filename = f"{family.folder}/{name}.yaml"
    packaged = resources.files("collectors").joinpath("profiles", family.folder, f"{name}.yaml")
    is_name = _NAME.match(name) is not None  # never a path
    local = site / filename if site is not None and is_name else None
    if local is not None and local.is_file():
        if packaged.is_file():
            log.info("%s profile %s: %s overrides the packaged one", family.kind, name, local)
        source, text = str(local), local.read_text(encoding="utf-8")
    elif is_name and packaged.is_file():
        source, text = filename, packaged.read_text(encoding="utf-8")
    else:
        known = ", ".join(_names(family, site)) or "none"
        raise ProfileError(f"{filename}: no such {family.kind} profile (available: {known})")
    profile = parse(text, source, family.model, named=family.named)
    if wrong := _misnamed(profile, name, source):
        raise ProfileError(wrong)
    return profile


@cache
def _all(family: Family[Model], site: Path | None) -> tuple[Model, ...]:
    return tuple(_read(family, name, site) for name in _names(family, site))
