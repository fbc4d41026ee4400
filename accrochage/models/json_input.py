"""Events' JSON as read from any input (a file's line, a body, a Kafka record, a CSV cell).

Decimals keep their digits as written (`WrittenNumber`), integers too long to convert and
keys given twice are marked rather than failing or being resolved silently: an event stays one
event, invalid, naming what is wrong.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from accrochage.models.problems import DUPLICATED
from accrochage.models.text import WrittenNumber

__all__ = ["ELEMENT_DECODER", "NUMBER_TOO_LONG", "loads_json", "marked_object"]

NUMBER_TOO_LONG = "number_too_long"
"""The key of the object that stands for an integer longer than Python converts
(`sys.get_int_max_str_digits()`, 4,300 digits: a guard against quadratic conversion); its
value is the count of digits. Valid JSON, and a value no field accepts."""


def _bounded_int(text: str) -> Any:
    digits = len(text) - text.startswith("-")
    return int(text) if digits <= _INT_DIGITS else {NUMBER_TOO_LONG: digits}


_INT_DIGITS = sys.get_int_max_str_digits() or 1 << 62


def marked_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object; a key given twice is marked (`DUPLICATED`), not silently resolved (an
    `object_pairs_hook`: events' parser's, and request bodies')."""
    built = dict(pairs)
    if len(built) != len(pairs) or DUPLICATED in built:
        seen: set[str] = set()
        twice: set[str] = set()
        for key, _ in pairs:
            (twice if key in seen else seen).add(key)
        # A sender's own key of that name is listed as one: the value is always this list.
        built[DUPLICATED] = sorted(twice | ({DUPLICATED} & seen))
    return built


_DECODER = json.JSONDecoder(
    parse_float=WrittenNumber,
    parse_constant=WrittenNumber,
    parse_int=_bounded_int,
    object_pairs_hook=marked_object,
)
"""Built once: `json.loads(..., parse_float=...)` builds a decoder at every call. `NaN` and
`Infinity` (which Python's json writes, and which are not JSON) come as non-finite numbers:
the fields holding them fail validation, and the stored content marks them (`NOT_JSON`). An
integer too long to convert becomes a `NUMBER_TOO_LONG` object: the event stays one event,
invalid, and never makes an array it is part of unreadable."""


ELEMENT_DECODER = _DECODER
"""`loads_json`'s parser, for a caller reading an array's elements one by one (`raw_decode`)."""


def loads_json(raw: bytes | str) -> Any:
    """A body or a line parsed as events are (`_DECODER`): UTF-8, -16 or -32 as JSON allows."""
    text = raw if isinstance(raw, str) else raw.decode(json.detect_encoding(raw), "surrogatepass")
    return _DECODER.decode(text)
