"""Where each key of a TOML configuration file is written, so that an error names its line.

`tomllib` gives values, not places. A configuration file is a few dozen lines of tables and
`key = value`: a scan of its lines finds each key's line (tables, arrays of tables counted
item by item, dotted and quoted keys), skipping the inside of multi-line strings and arrays.
A key the scan cannot place (one inside an inline table, say) is told by the nearest table
that holds it, or not at all: a place is a help, never a guess.
"""

from __future__ import annotations

import re

Loc = tuple[str | int, ...]

_ARRAY_TABLE = re.compile(r"\s*\[\[\s*(?P<name>[^\[\]]+?)\s*\]\]\s*(#.*)?$")
_TABLE = re.compile(r"\s*\[\s*(?P<name>[^\[\]]+?)\s*\]\s*(#.*)?$")
_ONE_KEY = r"""[A-Za-z0-9_-]+|"[^"\\]*"|'[^']*'"""
_KEY = re.compile(rf"\s*(?P<key>(?:{_ONE_KEY})(?:\s*\.\s*(?:{_ONE_KEY}))*)\s*=")
_PART = re.compile(_ONE_KEY)


def key_lines(text: str) -> dict[Loc, int]:
    """Each table's and key's path (list items by their index) and its line, from 1."""
    found: dict[Loc, int] = {}
    arrays: dict[tuple[str, ...], int] = {}
    table: Loc = ()
    in_string: str | None = None
    in_array = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if in_string is not None:
            if line.count(in_string) % 2 == 1:
                in_string = None
            continue
        if in_array > 0:  # the lines of a multi-line array value: `[1, 2]` is no table there
            in_array += _depth(line)
            continue
        if (matched := _ARRAY_TABLE.match(line)) is not None:
            names = _parts(matched["name"])
            arrays[names] = arrays.get(names, -1) + 1
            table = (*_within(names[:-1], arrays), names[-1], arrays[names])
            found.setdefault(table, number)
        elif (matched := _TABLE.match(line)) is not None:
            table = _within(_parts(matched["name"]), arrays)
            for size in range(1, len(table) + 1):  # `[a.b]` writes table `a` there too
                found.setdefault(table[:size], number)
        elif (matched := _KEY.match(line)) is not None:
            found.setdefault((*table, *_parts(matched["key"])), number)
            value = line[matched.end() :].lstrip()
            in_string = _opened_string(value)
            if in_string is None and value.startswith("["):
                in_array = _depth(value)
    return found


def line_of(lines: dict[Loc, int], loc: Loc) -> tuple[int, bool] | None:
    """The line of `loc`, and whether it is the key's own (False: the nearest table holding
    it, where a missing key goes); None when no part of it is placed."""
    for size in range(len(loc), 0, -1):
        number = lines.get(loc[:size])
        if number is not None:
            return number, size == len(loc)
    return None


def _parts(dotted: str) -> tuple[str, ...]:
    return tuple(part.strip("\"'") for part in _PART.findall(dotted))


def _within(names: tuple[str, ...], arrays: dict[tuple[str, ...], int]) -> Loc:
    """`names` with the current item of each array of tables it runs through:
    `[certifiers.x]` after a second `[[certifiers]]` is `certifiers.1.x`."""
    path: list[str | int] = []
    for size in range(1, len(names) + 1):
        path.append(names[size - 1])
        if names[:size] in arrays:
            path.append(arrays[names[:size]])
    return tuple(path)


def _opened_string(value: str) -> str | None:
    """The delimiter of the multi-line string `value` opens and leaves open, if any (a
    one-line string holding three quotes opens none)."""
    for delimiter in ('"""', "'''"):
        if value.startswith(delimiter) and value.count(delimiter) % 2 == 1:
            return delimiter
    return None


_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'')


def _depth(text: str) -> int:
    """How many brackets `text` leaves open (negative: closes), strings and comments aside."""
    bare = _STRINGS.sub("", text).split("#", 1)[0]
    return bare.count("[") - bare.count("]")
