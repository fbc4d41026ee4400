"""Constrained scalar types of the event contract, shared by every model.

Every text field is trimmed, never empty, and holds XML 1.0 characters only: a control
character would make the CDC reject the whole file, so it is refused here with its field.
"""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import date
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, StringConstraints
from pydantic_core import PydanticCustomError

# C0 and C1 controls (tab and newline included: no CDC field is multi-line), surrogates
# and the two non-characters XML 1.0 forbids.
_FORBIDDEN_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
MIN_YEAR = 1900
MAX_YEAR = 2099


# The same rule for pydantic-core (Rust regex, no Python call per field). Lone surrogates
# cannot reach it: pydantic-core refuses them as `string_unicode` first.
XML_TEXT_PATTERN = r"^[^\u0000-\u001F\u007F-\u009F\uFFFE\uFFFF]*$"


def forbidden_char_message(value: str) -> str | None:
    """What is wrong with a text that holds a character XML 1.0 refuses, or None."""
    found = _FORBIDDEN_CHARS.search(value)
    if found is None:
        return None
    return (
        f"contains the control character U+{ord(found.group()):04X} at position "
        f"{found.start()}; only printable XML 1.0 characters are allowed"
    )


def check_xml_text(value: str) -> str:
    message = forbidden_char_message(value)
    if message is not None:
        raise PydanticCustomError("xml_char", message)
    return value


WHITE_SPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
"""What the models trim around a text (Unicode's White_Space, as pydantic-core does). Python's
`str.strip()` also takes U+001C–U+001F, which a text may not hold: trimmed so, a record id
ending in one named another record than the one the event is refused for."""


def trimmed(value: str) -> str:
    """`value` without the white space around it, as the models trim it."""
    return value.strip(WHITE_SPACE)


def readable(value: Any) -> Any:
    """A text someone wrote (a name, a label), in Unicode's composed form (NFC): `Hélène`
    typed on one system and another is the same name, the same content, and counts the
    characters the XSD counts. A text with no visible character (a zero-width space, a lone
    accent) is refused: the CDC could match no holder with it."""
    if not isinstance(value, str) or value.isascii():
        return value
    value = unicodedata.normalize("NFC", value)
    if trimmed(value) and not any(unicodedata.category(c)[0] in "LNPS" for c in value):
        raise PydanticCustomError(  # never quoted: a name is personal data
            "invisible_text",
            "holds no visible character (only invisible or combining ones): send the text",
        )
    return value


def _bounded(low: int, high: int) -> StringConstraints:
    """Trimmed, `low`–`high` characters, XML 1.0 text only (see `forbidden_char_message`)."""
    return StringConstraints(
        strip_whitespace=True, min_length=low, max_length=high, pattern=XML_TEXT_PATTERN
    )


Text3 = Annotated[str, _bounded(3, 3)]
Text5 = Annotated[str, _bounded(5, 5)]
Text9 = Annotated[str, _bounded(1, 9)]
Text13 = Annotated[str, _bounded(1, 13)]
Text20 = Annotated[str, _bounded(1, 20)]
Text30 = Annotated[str, _bounded(1, 30)]
Text60 = Annotated[str, _bounded(1, 60)]
Text255 = Annotated[str, _bounded(1, 255)]
Text1000 = Annotated[str, _bounded(1, 1000)]


def _words(high: int) -> Any:
    bounds = _bounded(1, high)
    return Annotated[
        str, bounds, BeforeValidator(readable, json_schema_input_type=Annotated[str, bounds])
    ]


Words20 = _words(20)
"""Text someone wrote (names, places, labels): `readable`, then as `Text20`."""
Words30 = _words(30)
Words60 = _words(60)
Words255 = _words(255)
Words1000 = _words(1000)


def check_year(year: int) -> int:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise PydanticCustomError(  # the year is never quoted: it may be a birth year
            "year_range", "the year is outside 1900–2099, the range the CDC accepts"
        )
    return year


def parse_iso_date(value: Any) -> date:
    """A `YYYY-MM-DD` string that names a real day between 1900 and 2099."""
    if not isinstance(value, str):
        raise PydanticCustomError("date_type", "expected a date as a YYYY-MM-DD string")
    if len(value) != 10 or _ISO_DATE.fullmatch(value) is None:
        # The value is never quoted: a birth date is personal data.
        raise PydanticCustomError("date_format", "expected a date as YYYY-MM-DD")
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError(
            "date_value", "is not a day of the calendar (YYYY-MM-DD: check the month and day)"
        ) from None
    check_year(parsed.year)
    return parsed


IsoDate = Annotated[date, BeforeValidator(parse_iso_date, json_schema_input_type=date)]


class WrittenNumber(float):
    """A JSON number with a fraction or an exponent, parsed with the text it was written as
    (`json.loads(..., parse_float=WrittenNumber)`): a decimal score keeps every digit."""

    text: str

    def __new__(cls, text: str) -> WrittenNumber:
        number = super().__new__(cls, text)
        number.text = text
        return number


def score_to_text(value: Any) -> Any:
    """`score` alone accepts a JSON number, kept as the text the CDC `scoring` element holds."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise PydanticCustomError(
            "finite_number",
            "must be a finite number or a text, got {value}",
            {"value": str(value)},
        )
    if isinstance(value, WrittenNumber):
        return value.text
    if isinstance(value, float):
        return repr(value) if not value.is_integer() else str(int(value))
    return value


Score = Annotated[
    str,
    _bounded(1, 255),
    BeforeValidator(score_to_text, json_schema_input_type=str | int | float),
]
Digit1 = Annotated[str, _bounded(1, 1)]
DigitalLevel = Annotated[int, Field(ge=1, le=8)]
GeneralScore = Annotated[int, Field(ge=1, le=1000)]
