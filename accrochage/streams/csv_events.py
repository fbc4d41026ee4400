"""Events from CSV: a header of dotted paths (`holder.birth_name`), one event per row.

Nothing of a row is dropped without a word: a cell beyond the header's columns, or under a
column with no name, is a problem of its row; a header that names a field twice, or a field
and one of its parts (`holder.birth_place` and `holder.birth_place.insee_code`), refuses the
file before any row. A stray double quote makes the csv module read the lines up to the
next one as one cell: the row says so, naming the lines, instead of the rows there vanishing.
A row the csv module cannot read at all becomes an unusable event of its own: the rows after
it are read.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Sequence
from typing import IO, Any

from accrochage.errors import InputError
from accrochage.models.decode import loads_json
from accrochage.models.problems import Problem
from accrochage.streams.ingest import Incoming

MAX_LINE_BYTES = 16 * 1024 * 1024
"""A line (a JSONL event, a CSV row) longer than this is not read."""
LIST_FIELDS = {"holder.first_names"}
BOOL_FIELDS = {"certified"}
INT_FIELDS = {"digital_level.general_score"}
JSON_FIELDS = {"digital_level.results"}
DELIMITERS = (",", ";", "\t")
"""The header's most frequent one separates the cells (a tie: the first); a tab is what
Excel's "Unicode text" writes."""
_SEPARATOR_LINE = re.compile(r"sep=([,;\t|])")
"""The line Excel may write before the header, naming the separator."""
_INTEGER = re.compile(r"-?[0-9]{1,18}")
"""An integer cell: ASCII digits only (`"²".isdigit()` is true, and `int("²")` fails), short
enough to convert; anything else stays text and fails validation with its field's name."""
BOM = b"\xef\xbb\xbf"


def _cell(path: str, value: str) -> Any:
    """CSV cells are text; a few fields are converted so that JSON types line up.

    A cell that does not convert is passed on as text, so validation names its field. JSON
    cells are parsed as JSON events are (`loads_json`: decimals kept as written, `NaN`
    marked), so that a CSV row's content and hash are those of the same event in JSONL.
    """
    if path in LIST_FIELDS:
        return [part.strip() for part in value.split("|")]
    if path in BOOL_FIELDS and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    if path in INT_FIELDS and _INTEGER.fullmatch(value.strip()):
        return int(value)
    if path in JSON_FIELDS:
        try:
            return loads_json(value)
        except (ValueError, RecursionError):
            return value
    if path == "holder.birth_date" and len(value.strip()) in (4, 7):
        parts = [int(p) if _INTEGER.fullmatch(p) else p for p in value.strip().split("-")]
        return {"year": parts[0], "month": parts[1] if len(parts) > 1 else None, "day": None}
    return value


def csv_row_to_event(row: dict[str, str]) -> dict[str, Any]:
    """A row of a header already checked (`header_problem`): each cell at its dotted path."""
    event: dict[str, Any] = {}
    for path, value in row.items():
        if not path or value is None or value == "":
            continue
        target = event
        *parents, leaf = path.strip().split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = _cell(path.strip(), value)
    return event


def header_problem(columns: Sequence[str]) -> str | None:
    """Why a header cannot be read safely: a field named twice (one value would hide the
    other), or a field and one of its parts (a value and a group of values at one place)."""
    seen: dict[str, int] = {}
    for number, column in enumerate(columns, 1):
        path = column.strip()
        if not path:
            continue
        if path in seen:
            return (
                f"column {path} appears twice (columns {seen[path]} and {number}): one "
                "value would hide the other; keep one of them"
            )
        seen[path] = number
    for path in seen:
        parts = path.split(".")
        for end in range(1, len(parts)):
            group = ".".join(parts[:end])
            if group in seen:
                return (
                    f"columns {group} and {path} both hold {group}: a field is either one "
                    f"value or a group of columns ({group}.…); keep one of them"
                )
    return None


def row_problems(
    columns: Sequence[str], cells: Sequence[str], start: int, end: int
) -> list[Problem]:
    """What of this row would be dropped or misread without a word."""
    problems = []
    extra = [cell for cell in cells[len(columns) :] if cell.strip()]
    if extra:
        problems.append(
            Problem(
                "event",
                f"{len(extra)} cell(s) beyond the header's {len(columns)} columns were not "
                "read: remove them, or name their column in the header",
            )
        )
    for number, (column, cell) in enumerate(zip(columns, cells, strict=False), 1):
        path = column.strip()
        if not path and cell.strip():
            problems.append(
                Problem(
                    "event",
                    f"column {number} has no name in the header: its value was not read; "
                    "name the column, or empty it",
                )
            )
        elif end > start and path not in JSON_FIELDS and ("\n" in cell or "\r" in cell):
            problems.append(
                Problem(
                    path,
                    f"holds a line break: a double quote opened in line {start} closes only "
                    f"in line {end}, so lines {start}-{end} were read as this one row; "
                    "close that quote, or remove it",
                )
            )
    return problems


class _Lines:
    """Physical lines (the header is line 1), decoded one by one. A line that does not decode
    becomes an unusable event with its number in `unreadable`, and is skipped; `take_span`
    gives the first and last lines of the CSV record just read."""

    def __init__(self, stream: IO[bytes], codec: str, name: str) -> None:
        self.stream = stream
        self.codec = codec
        self.name = name
        self.unreadable: list[Incoming] = []
        self._start: int | None = None
        self._number = 0

    def __iter__(self) -> Iterator[str]:
        while line := self.stream.readline(MAX_LINE_BYTES):
            self._number += 1
            number = self._number
            if number == 1 and line.startswith(BOM):
                line = line[len(BOM) :]
            try:
                text = line.decode(self.codec)
            except UnicodeDecodeError as exc:
                if number == 1:
                    raise _unreadable_header(self.name, self.codec, exc) from None
                self.unreadable.append(Incoming(line.rstrip(b"\r\n"), f"{self.name}:{number}"))
                continue
            if self._start is None and text.strip():
                self._start = number
            yield text

    def take_span(self) -> tuple[int, int]:
        start, self._start = self._start or self._number, None
        return start, self._number


def _unreadable_header(name: str, codec: str, exc: UnicodeDecodeError) -> InputError:
    """The header names every column: read wrongly, it would make each row an invalid record
    (its fields misnamed), so the file is refused before any row. The message names the
    byte, never the text (a file without a header holds a holder on its first line)."""
    byte = exc.object[exc.start]
    return InputError(
        f"{name}: line 1, the CSV header, is not {codec} (byte 0x{byte:02X} at byte "
        f"{exc.start + 1} of the line); no event of this file was read: save it as UTF-8, or "
        "give its encoding with --encoding"
    )


def read_csv(stream: IO[bytes], name: str, codec: str) -> Iterator[Incoming]:
    csv.field_size_limit(MAX_LINE_BYTES)  # a longer cell fails its own row (a field error)
    lines = _Lines(stream, codec, name)
    numbered = iter(lines)
    header, where = next(numbered, ""), "line 1"
    lines.take_span()
    said = _SEPARATOR_LINE.fullmatch(header.strip())
    if said is not None:  # Excel's `sep=;` line: the separator named, the header next
        header, where = next(numbered, ""), "line 2"
        lines.take_span()
    delimiter = said.group(1) if said is not None else max(DELIMITERS, key=header.count)
    columns = next(csv.reader([header], delimiter=delimiter), [])
    problem = header_problem(columns)
    if problem is not None:
        raise InputError(
            f"{name}: {where}, the CSV header: {problem}; no event of this file was read"
        )
    rows = csv.reader(numbered, delimiter=delimiter)
    while True:
        try:
            cells = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:
            start, end = lines.take_span()
            yield from _drained(lines)
            yield _unread_row(name, start, end, str(exc))
            continue
        start, end = lines.take_span()
        yield from _drained(lines)
        if any(cell.strip() for cell in cells):
            row = dict(zip(columns, cells, strict=False))
            problems = tuple(row_problems(columns, cells, start, end))
            yield Incoming(csv_row_to_event(row), f"{name}:{start}", problems=problems)
    yield from _drained(lines)


def _drained(lines: _Lines) -> list[Incoming]:
    unreadable, lines.unreadable = lines.unreadable, []
    return unreadable


def _unread_row(name: str, start: int, end: int, why: str) -> Incoming:
    where = f"line {start}" if start == end else f"lines {start}-{end}"
    problem = Problem("event", f"{where} could not be read as a CSV row ({why}); fix the row")
    return Incoming(
        f"({where} of {name}: not read)".encode(), f"{name}:{start}", problems=(problem,)
    )
