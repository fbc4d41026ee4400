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
from accrochage.models.json_input import loads_json
from accrochage.models.problems import UNREAD_CELLS, Problem
from accrochage.streams.csv_header import header_problem
from accrochage.streams.incoming import Incoming

MAX_LINE_BYTES = 16 * 1024 * 1024
"""A line (a JSONL event, a CSV row) longer than this is not read."""
KEPT_OF_OVERLONG = 256
"""Bytes of a line too long to read kept in the unusable log: enough to find it."""
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


def csv_row_to_event(columns: Sequence[str], cells: Sequence[str]) -> dict[str, Any]:
    """A row of a header already checked (`csv_header.header_problem`): each cell at its
    dotted path. Cells without a column (beyond the header's, or under a column with no name)
    are kept under `UNREAD_CELLS`, which no field accepts: the row is invalid for them, and
    stays so when sent again or validated again."""
    event: dict[str, Any] = {}
    unread = [cell for cell in cells[len(columns) :] if cell.strip()]
    for column, value in zip(columns, cells, strict=False):
        path = column.strip()
        if not path:
            if value.strip():
                unread.append(value)
            continue
        if value == "":
            continue
        target = event
        *parents, leaf = path.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = _cell(path, value)
    if unread:
        event[UNREAD_CELLS] = unread
    return event


def row_problems(
    columns: Sequence[str], cells: Sequence[str], start: int, end: int
) -> list[Problem]:
    """A cell that a double quote left open made of several lines: the rows there were read
    as that cell (the row is invalid anyway: no field holds a line break; this says why)."""
    if end == start:
        return []
    return [
        Problem(
            column.strip(),
            f"holds a line break: a double quote opened in line {start} closes only in line "
            f"{end}, so lines {start}-{end} were read as this one row; close that quote, or "
            "remove it",
        )
        for column, cell in zip(columns, cells, strict=False)
        if column.strip() and column.strip() not in JSON_FIELDS and ("\n" in cell or "\r" in cell)
    ]


class _Lines:
    """Physical lines (the header is line 1), decoded one by one. A line that does not decode
    becomes an unusable event with its number in `unreadable`, and is skipped; `take_span`
    gives the first and last lines of the CSV record just read."""

    def __init__(self, stream: IO[bytes], codec: str, name: str) -> None:
        self.stream = stream
        self.codec = codec
        self.name = name
        self.unreadable: list[Incoming] = []
        self.header_number = 1
        """The header's line (2 after Excel's `sep=` line): one it cannot decode refuses the
        file."""
        self._start: int | None = None
        self._number = 0
        self._row_bytes = 0
        self._row_quotes = 0
        self.cut = False
        """The row just read was longer than `MAX_LINE_BYTES` over its lines: its rest was
        skipped, and its cells are not an event (`read_csv`)."""

    def __iter__(self) -> Iterator[str]:
        while line := self.stream.readline(MAX_LINE_BYTES + 1):
            self._number += 1
            number = self._number
            if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                if number == self.header_number:
                    raise InputError(
                        f"{self.name}: line {number}, the CSV header, is longer than "
                        f"{MAX_LINE_BYTES // (1024 * 1024)} MiB; no event of this file was read"
                    )
                self.unreadable.append(overlong_line(self.stream, line, self.name, number))
                continue
            self._row_bytes += len(line)
            self._row_quotes += line.count(b'"')
            if self._row_bytes > MAX_LINE_BYTES:
                # Over several lines: the reader is inside a quoted cell, which this closes.
                self._skip_the_row()
                yield '"\n'
                continue
            if number == 1 and line.startswith(BOM):
                line = line[len(BOM) :]
            try:
                text = line.decode(self.codec)
            except UnicodeError as exc:  # a codec named with --encoding may raise its parent
                if number == self.header_number:
                    raise _unreadable_header(self.name, number, self.codec, exc) from None
                self.unreadable.append(_undecodable(line, self.name, number, self.codec, exc))
                continue
            if self._start is None and text.strip():
                self._start = number
            yield text

    def _skip_the_row(self) -> None:
        """Read on to the end of a row too long to keep: the line where its quotes close (a
        row goes on over lines only inside a quoted cell)."""
        self.cut = True
        while self._row_quotes % 2 and (line := self.stream.readline(MAX_LINE_BYTES + 1)):
            if line.endswith(b"\n"):
                self._number += 1
            self._row_quotes += line.count(b'"')

    def take_span(self) -> tuple[int, int]:
        start, self._start = self._start or self._number, None
        self._row_bytes = self._row_quotes = 0
        return start, self._number


def _undecodable(line: bytes, name: str, number: int, codec: str, exc: UnicodeError) -> Incoming:
    """A row's line that is not in the file's encoding: unusable, kept as it came, saying
    which byte in which encoding. Decoded as JSON, it was said to be "not valid text (utf-8
    ...); JSON is UTF-8", in a Windows-1252 file too, and naming another byte."""
    where = ""
    if isinstance(exc, UnicodeDecodeError):
        where = f" (byte 0x{exc.object[exc.start]:02X} at byte {exc.start + 1} of the line)"
    problem = Problem(
        "event",
        f"line {number} is not {codec}{where}; the other lines were read: save the file as "
        "UTF-8, or give its encoding with --encoding, and send this row again",
    )
    return Incoming(line.rstrip(b"\r\n"), f"{name}:{number}", problems=(problem,))


def _unreadable_header(name: str, number: int, codec: str, exc: UnicodeError) -> InputError:
    """The header names every column: read wrongly, it would make each row an invalid record
    (its fields misnamed), so the file is refused before any row. The message names the
    byte, never the text (a file without a header holds a holder on its first line)."""
    where = ""
    if isinstance(exc, UnicodeDecodeError):
        byte = exc.object[exc.start]
        where = f" (byte 0x{byte:02X} at byte {exc.start + 1} of the line)"
    return InputError(
        f"{name}: line {number}, the CSV header, is not {codec}{where}; no event of this file "
        "was read: save it as UTF-8, or give its encoding with --encoding"
    )


def read_csv(stream: IO[bytes], name: str, codec: str) -> Iterator[Incoming]:
    csv.field_size_limit(MAX_LINE_BYTES)  # a longer cell fails its own row (a field error)
    lines = _Lines(stream, codec, name)
    numbered = iter(lines)
    header, where = next(numbered, ""), "line 1"
    lines.take_span()
    said = _SEPARATOR_LINE.fullmatch(header.strip())
    if said is not None:  # Excel's `sep=;` line: the separator named, the header next
        lines.header_number = 2
        header, where = next(numbered, ""), "line 2"
        lines.take_span()
    delimiter = said.group(1) if said is not None else max(DELIMITERS, key=header.count)
    problem = _line_end_problem(header)
    columns = []
    if problem is None:
        try:
            columns = next(csv.reader([header], delimiter=delimiter), [])
        except csv.Error as exc:
            problem = f"it cannot be read as a CSV row ({exc})"
    problem = problem or header_problem(columns)
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
        if lines.cut:
            lines.cut = False
            yield _unread_row(name, start, end, f"longer than {MAX_LINE_BYTES // 2**20} MiB")
            continue
        if any(cell.strip() for cell in cells):
            problems = tuple(row_problems(columns, cells, start, end))
            event = csv_row_to_event(columns, cells)
            yield Incoming(event, f"{name}:{start}", problems=problems)
    yield from _drained(lines)


def _line_end_problem(header: str) -> str | None:
    """A carriage return inside the header: the file's lines end with CR alone (classic Mac
    OS, Excel's "CSV (Macintosh)"), so the whole file reads as one line; or the header
    holds one in a cell name."""
    if "\r" not in header.rstrip("\r\n"):
        return None
    return (
        "it holds a carriage return: the file's lines end with CR alone (old Mac format, "
        'Excel\'s "CSV (Macintosh)"); save it as "CSV UTF-8", or convert its line endings '
        "(CR to LF)"
    )


def _drained(lines: _Lines) -> list[Incoming]:
    unreadable, lines.unreadable = lines.unreadable, []
    return unreadable


def _unread_row(name: str, start: int, end: int, why: str) -> Incoming:
    where = f"line {start}" if start == end else f"lines {start}-{end}"
    problem = Problem("event", f"{where} could not be read as a CSV row ({why}); fix the row")
    return Incoming(
        f"({where} of {name}: not read)".encode(), f"{name}:{start}", problems=(problem,)
    )


def overlong_line(stream: IO[bytes], line: bytes, name: str, number: int) -> Incoming:
    """A line longer than `MAX_LINE_BYTES` (`line`, its start, read from `stream`): the rest of
    it skipped, not read, its start kept (no digest: two such lines of the same start are two
    inputs)."""
    while (rest := stream.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
        pass
    problem = Problem(
        "event",
        f"line {number} is longer than {MAX_LINE_BYTES // (1024 * 1024)} MiB: not read (its "
        "start is kept); an event is far smaller: is it several events on one line?",
    )
    return Incoming(line[:KEPT_OF_OVERLONG], f"{name}:{number}", problems=(problem,))
