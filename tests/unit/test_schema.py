"""The one "key.path: message" formatter behind the config, profile and web config errors."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError, model_validator

from collectors.schema import STRICT, first_problem, problems


class Item(BaseModel):
    model_config = STRICT

    name: str
    count: int = 1


class File(BaseModel):
    model_config = STRICT

    items: list[Item] = []
    bits: dict[int, int] = {}
    low: int = 0
    high: int = 0

    @model_validator(mode="after")
    def _ordered(self) -> File:
        if self.low > self.high:
            raise ValueError(f"high: {self.high} is below low {self.low}")
        return self


def errors(data: dict[str, object]) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        File.model_validate(data)
    return caught.value


def test_paths_index_lists_and_maps_and_name_named_items() -> None:
    data = {"items": [{"name": "a"}, {"name": "b", "count": "x"}, {}], "bits": {3: "y"}}
    exc = errors(data)
    assert problems(exc, data, named=("items",)) == [
        "items[1] (b).count: Input should be a valid integer, unable to parse string as an integer",
        "items[2].name: required key is missing",
        "bits[3]: Input should be a valid integer, unable to parse string as an integer",
    ]
    assert problems(exc)[0].startswith("items[1].count: ")


def test_a_validator_blames_its_key_and_yaml_booleans_are_named() -> None:
    assert problems(errors({"low": 5, "high": 2})) == ["high: 2 is below low 5"]
    assert problems(errors({"items": [{"name": False}]})) == [
        "items[0].name: Input should be a valid string "
        "(got a YAML boolean: quote words such as OFF, ON, YES)"
    ]


def test_unknown_keys_in_the_callers_words_and_every_line_one_line() -> None:
    exc = errors({"colour": True, "sha\npe": 1})
    assert problems(exc) == [
        "colour: Extra inputs are not permitted",
        "'sha\\npe': Extra inputs are not permitted",
    ]
    assert first_problem(exc, unknown_key="unknown key") == "colour: unknown key (and 1 more)"
