"""Reading the reference CSV files whatever their serialisation, strict about their columns.

France compétences writes `;`-separated, fully quoted UTF-8 with CRLF; INSEE's files are
`,`-separated, quoted on insee.fr and unquoted in other copies, LF or CRLF, with or without a
BOM. Columns are found by their header name, never by position.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

from accrochage.errors import RefdataError
from accrochage.models.problems import escaped

MAX_FIELD_CHARS = 16 * 1024 * 1024
"""A field of the reference files at most (the csv module's default, 128 KiB, could refuse a
long description of the export)."""
_FR_DATE = re.compile(r"(\d{2})/(\d{2})/(\d{4})")
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


def clean(value: str | None) -> str:
    """A value as meant: surrounding blanks (the export's TAB before SIRETs) removed, the
    doubled apostrophes of some France compétences fields undone."""
    if not value:
        return ""
    return value.strip().replace("''", "'")


def text_of(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RefdataError(
            f"{name} is not UTF-8 (byte 0x{exc.object[exc.start]:02x} at {exc.start}): "
            "use the file as downloaded from the official site"
        ) from None


def rows(
    data: bytes, name: str, required: Sequence[str], *, delimiter: str | None = None
) -> Iterator[dict[str, str]]:
    """Each row of a CSV file as {column: cleaned value}, for the required columns only."""
    text = text_of(data, name)
    _whole(text, name)
    first = text.split("\n", 1)[0]
    if delimiter is None:
        delimiter = ";" if first.count(";") > first.count(",") else ","
    csv.field_size_limit(MAX_FIELD_CHARS)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header_row = next(_read(reader, name), None)
    if header_row is None:
        raise RefdataError(f"{name} is empty: download it again")
    header = [clean(column) for column in header_row]
    positions = {column.upper(): index for index, column in enumerate(header)}
    wanted = []
    for column in required:
        index = positions.get(column.upper())
        if index is None:
            raise RefdataError(
                f"{name} has no column {column} (its columns: {escaped(', '.join(header)[:300])}): "
                "is it the right file, as downloaded?"
            )
        wanted.append((column, index))
    width = max(index for _, index in wanted) + 1
    for line in _read(reader, name):
        if not line or (len(line) == 1 and not line[0].strip()):
            continue
        if len(line) < width:
            raise RefdataError(
                f"{name}, line {reader.line_num}: {len(line)} values where the header has "
                f"{len(header)}; the file is truncated or damaged: download it again"
            )
        yield {column: clean(line[index]) for column, index in wanted}


def _whole(text: str, name: str) -> None:
    """A file cut inside a quoted value of its last line (a copy still under way, a download
    that stopped) is refused: the csv module reads that line's open value to the end, so a
    v_commune_depuis_1943 cut after `"1943-01-01","` loaded its last commune as still
    current, and the file, above half of the loaded one, passed as whole. The official
    files end with a line break; a whole line without one has its quotes paired, and does
    not end with a separator: cut after `"1943-01-01",`, the same line read an empty
    DATE_FIN (the official files write it `""`), the commune still current."""
    if not text or text.endswith(("\n", "\r")):
        return
    last = text.rsplit("\n", 1)[-1]
    if last.count('"') % 2:
        raise RefdataError(
            f"{name} ends inside a quoted value of its last line: the file is cut short (a "
            "copy still under way?); download it again, or wait for the copy to end"
        )
    if last.endswith((",", ";")):
        raise RefdataError(
            f"{name} ends with a separator and no line break: the file is cut short inside "
            "its last line (a copy still under way?); download it again, or wait for the "
            "copy to end (a whole file ends with a line break)"
        )


def _read(reader: Any, name: str) -> Iterator[list[str]]:
    """The reader's rows; a row the csv module refuses (a field beyond its limit, a stray
    NUL) is a `RefdataError` naming the line, never a traceback."""
    while True:
        try:
            line = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise RefdataError(
                f"{name}, line {reader.line_num}: cannot be read as CSV ({exc}); the file is "
                "damaged: download it again"
            ) from None
        yield line


def day(value: str, name: str, column: str) -> date | None:
    """A `DD/MM/YYYY` or `YYYY-MM-DD` date, or None when empty."""
    if not value:
        return None
    match = _FR_DATE.fullmatch(value)
    try:
        if match is not None:
            return date(int(match.group(3)), int(match.group(2)), int(match.group(1)))
        match = _ISO_DATE.fullmatch(value)
        if match is not None:
            return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        pass
    raise RefdataError(f"{name}: {column} {value!r} is not a date (DD/MM/YYYY or YYYY-MM-DD)")
