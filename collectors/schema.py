"""The strict model config of every model read from a file (config, profiles, web config), and
one way to say what is wrong with such a file: a "key.path: message" line per problem.

    try:
        Profile.model_validate(data)
    except ValidationError as exc:
        problems(exc)  -> ["fields[3].type: Input should be 'u16', 's16', ...", ...]

Key paths index lists and integer-keyed maps with [i] and join names with dots. A model
validator blames a key by starting its message with it ("address: ..."): the key moves into the
path. Every line stays one line, whatever the file held.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from pydantic import ConfigDict, ValidationError

# Frozen, and a key the model does not know is an error: a typo is never a silent default.
# Each module sets it on a base of its own: ruff's RUF012 knows pydantic's mutable defaults are
# copied only for classes whose BaseModel it sees in the same file.
STRICT = ConfigDict(frozen=True, extra="forbid")
_BLAMED_KEY = re.compile(r"^([a-z_]+): ")


def problems(
    exc: ValidationError,
    data: object = None,
    *,
    unknown_key: str | None = None,
    named: Collection[str] = (),
) -> list[str]:
    """One "key.path: message" line per error.

    unknown_key: the message for a key the model does not know (None: pydantic's words).
    named: top-level lists in `data` whose items are shown with their `name`, fields[3]
    (battery.charge), because an index alone is hard to find in a long file.
    """
    lines = []
    for error in exc.errors():
        loc = list(error["loc"])
        message = _message(error["type"], str(error["msg"]), unknown_key)
        if error["type"] == "value_error" and (key := _BLAMED_KEY.match(message)):
            loc.append(key.group(1))
            message = message[key.end() :]
        if isinstance(error.get("input"), bool) and error["type"] != "extra_forbidden":
            message += " (got a YAML boolean: quote words such as OFF, ON, YES)"
        where = _path(loc, data, named)
        lines.append(f"{where}: {message}" if where else message)
    return lines


def first_problem(
    exc: ValidationError,
    data: object = None,
    *,
    unknown_key: str | None = None,
    named: Collection[str] = (),
) -> str:
    """The first problem, and how many more there are, on one line."""
    return summary(problems(exc, data, unknown_key=unknown_key, named=named))


def summary(lines: Sequence[str]) -> str:
    """The first of several problem lines, and how many more there are."""
    first, *rest = lines
    return f"{first} (and {len(rest)} more)" if rest else first


def _message(kind: str, msg: str, unknown_key: str | None) -> str:
    if kind == "extra_forbidden" and unknown_key is not None:
        return unknown_key
    if kind == "missing":
        return "required key is missing"
    # Validators quote the offending value, which may hold a newline: keep one line a problem.
    return "".join(
        c if c.isprintable() else repr(c)[1:-1] for c in msg.removeprefix("Value error, ")
    )


def _path(loc: Sequence[int | str], data: object, named: Collection[str]) -> str:
    out = ""
    for depth, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
            if depth == 1 and loc[0] in named and (name := _item_name(data, loc[0], part)):
                out += f" ({name})"
        elif not part.startswith(("function-after", "function-before")):
            text = key_text(part)
            out += f".{text}" if out else text
    return out


def _item_name(data: object, key: int | str, index: int) -> str:
    try:
        return key_text(data[key][index]["name"])  # type: ignore[index]
    except (KeyError, IndexError, TypeError):
        return ""


def key_text(key: object) -> str:
    """A key as a problem line shows it; one with a newline or nothing printable is quoted."""
    text = str(key)
    return text if text.isprintable() and text else repr(text)
