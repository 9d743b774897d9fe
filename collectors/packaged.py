"""Device profiles shipped with the agent: YAML files in collectors/profiles/<family>/, each read
into its family's strict model once.

    profile_names("modbus")                                 -> ["apc-smart-ups", ...]
    load("snmp", "cisco-ios", SnmpProfile, kind="SNMP")     -> SnmpProfile(name="cisco-ios", ...)

Every family's model starts from ProfileHeader, so the keys they share are named the same way
in each: `name` (the file's name), `description`, `source`. Every error is a ProfileError of one
line naming the file and the key.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from functools import cache
from importlib import resources
from typing import TypeVar

import yaml
from pydantic import BaseModel, Field, ValidationError

from .schema import STRICT, first_problem

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")  # a file name, never a path


class ProfileHeader(BaseModel):
    """The keys every profile family has."""

    model_config = STRICT

    name: str = Field(pattern=_NAME.pattern)  # repeats the file's name
    description: str = ""
    source: str = Field(min_length=1)  # where the map comes from: MIB, vendor document, driver


Model = TypeVar("Model", bound=ProfileHeader)


class ProfileError(ValueError):
    """A profile is missing or invalid; the message names the file and the offending key."""


def profile_names(family: str) -> list[str]:
    """The profiles shipped in collectors/profiles/<family>/ (file names without .yaml)."""
    folder = resources.files("collectors").joinpath("profiles", family)
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def parse(text: str, source: str, model: type[Model], *, named: Collection[str] = ()) -> Model:
    """Validate profile YAML; `source` (a file name) starts every error message. `named`: lists
    whose items an error shows with their name (see collectors.schema.problems)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProfileError(f"{source}: not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise ProfileError(f"{source}: expected a mapping of profile keys")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(f"{source}: {first_problem(exc, data, named=named)}") from None


@cache
def load(
    family: str,
    name: str,
    model: type[Model],
    *,
    kind: str,
    named: tuple[str, ...] = (),
) -> Model:
    """collectors/profiles/<family>/<name>.yaml, validated; `kind` names the family in the
    error for an unknown name."""
    filename = f"{family}/{name}.yaml"
    entry = resources.files("collectors").joinpath("profiles", family, f"{name}.yaml")
    if not _NAME.match(name) or not entry.is_file():
        known = ", ".join(profile_names(family)) or "none"
        raise ProfileError(f"{filename}: no such {kind} profile (available: {known})")
    profile = parse(entry.read_text(encoding="utf-8"), filename, model, named=named)
    if profile.name != name:
        raise ProfileError(f"{filename}: name: says {profile.name!r}, expected {name!r}")
    return profile
