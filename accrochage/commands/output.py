"""How commands print rows: aligned tables, JSON, and CSV a spreadsheet opens as it should."""

from __future__ import annotations

import csv
import itertools
import json
import re
import sys
import traceback
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import click

from accrochage.models.problems import escaped

FORMATS = ("table", "json", "csv", "excel")
EXCEL = "excel"
"""CSV as a spreadsheet set to French opens it by a double click: cells split on `;` (the
comma is its decimal mark), UTF-8 told by a BOM (without one, "critères" read "critÃ¨res"),
lines ending CRLF. `csv` stays the comma-separated UTF-8 that tools read."""
WIDTH_SAMPLE = 1000
Row = dict[str, Any]


_CLOSING = r"'(?=[\s.,;:)]|$)"
"""The quote that ends a quoted value: one followed by a space, a punctuation mark or the end.
An apostrophe inside a name is followed by a letter (N'DIAYE, D'ALMEIDA): the value went on
past it, and the rest of the name was printed."""
_QUOTED_VALUE = re.compile(rf"(?i)\b(value\s*|valeur\s*)'[^\n]{{0,300}}?{_CLOSING}")
_QUOTED_FIRST = re.compile(
    r"(?i)(?<=: )'[^\n]{0,300}?'(?=\s+(?:is not a valid value|n'est pas une valeur))"
)
"""Xerces's `cvc-datatype-valid.1.2.1: '1987-02-30' is not a valid value for 'date'.`: the
value first, with no "Value" before it (a birth date, a NIR)."""


def masked(message: str) -> str:
    """A CDC message with the values it quotes masked: its schema messages quote what a
    passage held ("Value 'DUPONT 1930575…' with length = '70'"), a name or a NIR in a table
    an operator pastes into a ticket. The CDC's validator (Xerces) may speak French ("la
    valeur '…'", as its reports do) and puts a datatype error's value first. `accrochage
    show ID` gives the whole message."""
    return _QUOTED_FIRST.sub("'…'", _QUOTED_VALUE.sub(r"\1'…'", message))


def problems_text(problems: Sequence[dict[str, str]]) -> str:
    """`field: message; field: message` — readable in a cell or a table."""
    return "; ".join(f"{p['field']}: {p['message']}" for p in problems)


def first_problem(problems: Sequence[dict[str, str]], width: int = 70) -> str:
    """The first problem, shortened to `width`, and how many more: what a table's cell says."""
    more = len(problems) - 1
    return shorten(problems_text(problems[:1]), width) + (f" (+{more} more)" if more > 0 else "")


def cell(value: Any) -> str:
    """A value as a spreadsheet reads it: booleans true/false, problems as text, none empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list) and all(isinstance(p, dict) and "field" in p for p in value):
        return problems_text(value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""What a spreadsheet takes for the start of a formula (OWASP's CSV injection list)."""


_AFTER_SEPARATOR = re.compile(r"([;,])([ ]*)(?=[=+\-@\t\r])")
"""A formula start after a `;` or a `,`: a French spreadsheet opens a CSV splitting on `;`,
where `a,;=2+3;` holds the cell `=2+3`; one set to English opens the `excel` format splitting
on `,`, where `a,=2+3,` (unquoted there: `,` is no separator of it) holds it too."""


def csv_cell(value: Any) -> str:
    """`cell`, with a text a spreadsheet would run as a formula kept as text (a `'` before
    it), at its start and after each `;` and `,`: record ids, CDC messages, an unknown
    field's name in a problem come from outside. Numbers are left as they are (a negative
    `days_left` is a number). Spaces before a formula start count as they do after a
    separator: an unusable line's raw input `  =cmd|…` is a formula once a spreadsheet trims
    its cells."""
    text = cell(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return text
    if ";" in text or "," in text:
        text = _AFTER_SEPARATOR.sub(r"\1\2'", text)
    return "'" + text if text.lstrip(" ").startswith(FORMULA_STARTS) else text


def width(text: str) -> int:
    """The columns `text` takes in a terminal: a wide (CJK) character two, a combining one
    (an accent written apart, `e` + U+0301) none; `len` shifted the columns after such ids."""
    if text.isascii():
        return len(text)
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


def table(rows: Sequence[Row], columns: Sequence[str], show: Callable[[Row, str], str]) -> str:
    return "\n".join(table_lines(rows, columns, show))


def table_lines(
    rows: Iterable[Row], columns: Sequence[str], show: Callable[[Row, str], str]
) -> Iterator[str]:
    """Aligned lines; the widths come from the first `WIDTH_SAMPLE` rows, then rows stream.
    Cells are `escaped`: a certifier, a record id or a message may come from a sender."""
    stream = iter(rows)
    sample = list(itertools.islice(stream, WIDTH_SAMPLE))
    cells = [[escaped(show(row, column)) or "-" for column in columns] for row in sample]
    widths = [max([width(c)] + [width(line[i]) for line in cells]) for i, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        padded = (v + " " * (w - width(v)) for v, w in zip(values, widths, strict=True))
        return "  ".join(padded).rstrip()

    yield line(columns)
    for values in cells:
        yield line(values)
    for row in stream:
        yield line([escaped(show(row, column)) or "-" for column in columns])


def echo_rows(
    rows: Iterable[Row],
    fmt: str,
    fields: Sequence[str],
    columns: Sequence[str],
    show: Callable[[Row, str], str],
    empty: str,
) -> int:
    """Print rows as they come (memory flat in their number); how many were printed.

    The rows are closed before it returns or raises, while the caller's reader is open: a
    reader gone (`records | head`) left them to the garbage collector, which ended their
    snapshot on the closed state and printed "Exception ignored ... Cannot operate on a
    closed database" with a traceback under the listing."""
    counted = _Counted(rows)
    try:
        _echo_counted(counted, fmt, fields, columns, show, empty)
    finally:
        counted.close()
    return counted.count


def _echo_counted(
    counted: _Counted,
    fmt: str,
    fields: Sequence[str],
    columns: Sequence[str],
    show: Callable[[Row, str], str],
    empty: str,
) -> None:
    if fmt == "json":
        click.echo("[", nl=False)
        for number, row in enumerate(counted):
            text = json.dumps({k: row.get(k) for k in fields}, ensure_ascii=False)
            click.echo(("\n " if number == 0 else ",\n ") + text, nl=False)
        click.echo("\n]" if counted.count else "]")
    elif fmt in ("csv", EXCEL):
        if fmt == EXCEL:
            click.echo("\ufeff", nl=False)
        writer = csv.writer(_Echo(), delimiter=";" if fmt == EXCEL else ",")
        writer.writerow(fields)
        for row in counted:
            writer.writerow([csv_cell(row.get(name)) for name in fields])
    else:
        lines = table_lines(counted, columns, show)
        header = next(lines)
        first = next(lines, None)
        if first is None:
            click.echo(empty)
        else:
            click.echo(header)
            click.echo(first)
            for text in lines:
                click.echo(text)


class _Counted:
    def __init__(self, rows: Iterable[Row]) -> None:
        self._rows = iter(rows)
        self.count = 0

    def __iter__(self) -> Iterator[Row]:
        for row in self._rows:
            self.count += 1
            yield row

    def close(self) -> None:
        """Ends the rows' generator, if they come from one (its snapshot of the state)."""
        close = getattr(self._rows, "close", None)
        if close is not None:
            close()


class _Echo:
    """A file-like target for csv.writer that writes through click."""

    def write(self, text: str) -> int:
        click.echo(text, nl=False)
        return len(text)


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def reason_of(exc: BaseException) -> str:
    """An error in a line: an OS error by its reason and file, never its traceback."""
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror or exc}{where}"
    return str(exc)


def flush_output() -> None:
    """The command's output written before it returns: buffered (a redirection, without
    PYTHONUNBUFFERED), a full disk refused it only at the interpreter's exit, as "Exception
    ignored" and exit 120, past every handler of the CLI."""
    sys.stdout.flush()


def output_refused(exc: OSError) -> bool:
    """Whether `exc` came from writing the command's output (`click.echo`, or its last
    `flush_output`: a full disk under a redirection, a terminal gone), not from the command's
    own work."""
    writers = (click.utils.echo.__code__, flush_output.__code__)
    return any(frame.f_code in writers for frame, _ in traceback.walk_tb(exc.__traceback__))
