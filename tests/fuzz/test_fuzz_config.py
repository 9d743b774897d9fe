"""Hostile config files: any YAML structure, mutated valid configs and raw bytes end in a Config
or a clean ConfigError (one line per problem, each naming the file), and `validate` exits 0 or 2.
"""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.config import Config, ConfigError, load_config, parse_config

from ..integration.conftest import require
from .settings import FUZZ

EXAMPLE = yaml.safe_load(
    (Path(__file__).parents[2] / "deploy" / "config.example.yml").read_text(encoding="utf-8")
)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
    st.text(max_size=40), st.sampled_from(["${UNSET_VAR}", "${cred:x}", "0.0.0.0:0", "-1", ""]),
)  # fmt: skip
structures = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=30,
)


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    config = copy.deepcopy(EXAMPLE)
    for _ in range(draw(st.integers(1, 4))):
        targets = paths(config)
        path = draw(st.sampled_from(targets))
        if not path:
            config = draw(structures)
            continue
        parent = config
        try:
            for key in path[:-1]:
                parent = parent[key]
        except (KeyError, IndexError, TypeError):
            continue
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "delete" and isinstance(parent, dict | list):
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=10))] = draw(structures)
        elif isinstance(parent, dict | list):
            parent[path[-1]] = draw(structures)
    return config


def check(data: Any) -> None:
    try:
        config = parse_config(data, "fuzz.yml")
    except ConfigError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.startswith("fuzz.yml: ") and "\n" not in problem, problem
        return
    assert isinstance(config, Config)


@FUZZ
@given(structures)
def test_any_yaml_structure(data: Any) -> None:
    check(data)


@FUZZ
@given(mutated())
def test_mutated_example_config(data: Any) -> None:
    check(data)


@FUZZ
@given(st.binary(max_size=400))
def test_raw_file_bytes(tmp_path_factory: Any, raw: bytes) -> None:
    path = tmp_path_factory.mktemp("cfg") / "agent.yml"
    path.write_bytes(raw)
    try:
        load_config(path)
    except ConfigError as exc:
        assert exc.problems and all("\n" not in p for p in exc.problems)


@settings(FUZZ, max_examples=8)
@given(mutated())
def test_validate_exits_0_or_2(tmp_path_factory: Any, data: Any) -> None:
    path = tmp_path_factory.mktemp("cli") / "agent.yml"
    path.write_text(yaml.safe_dump(data))
    result = subprocess.run([require("erozgar-agent"), "validate", "--config", str(path)],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode in (0, 2), result.stderr
    assert "Traceback" not in result.stderr
