"""Reading events from files: JSONL (one event per line) and CSV (dotted-path headers)."""

from __future__ import annotations

import codecs
import csv
import io
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, cast

from accrochage.errors import InputError
from accrochage.models.decode import loads_json
from accrochage.streams.ingest import Incoming

MAX_LINE_BYTES = 16 * 1024 * 1024
LIST_FIELDS = {"holder.first_names"}
BOOL_FIELDS = {"certified"}
INT_FIELDS = {"digital_level.general_score"}
JSON_FIELDS = {"digital_level.results"}
_INTEGER = re.compile(r"-?[0-9]{1,18}")
"""An integer cell: ASCII digits only (`"²".isdigit()` is true, and `int("²")` fails), short
enough to convert; anything else stays text and fails validation with its field's name."""


def looks_like_csv(name: str, head: bytes) -> bool:
    if name.lower().endswith((".csv", ".tsv")):
        return True
    if name.lower().endswith((".jsonl", ".ndjson", ".json")):
        return False
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return bool(stripped) and not stripped.startswith((b"{", b"["))


def read_jsonl(stream: IO[bytes], name: str) -> Iterator[Incoming]:
    number = 0
    while True:
        line = stream.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while (rest := stream.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                pass
            yield Incoming(b"line longer than 16 MiB, not read: " + line[:256], f"{name}:{number}")
            continue
        if line.strip():
            yield Incoming(line.rstrip(b"\r\n"), f"{name}:{number}")


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
        parts = [int(p) if p.isdigit() else p for p in value.strip().split("-")]
        return {"year": parts[0], "month": parts[1] if len(parts) > 1 else None, "day": None}
    return value


def csv_row_to_event(row: dict[str, str]) -> dict[str, Any]:
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


_BOM = b"\xef\xbb\xbf"
_UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}"
    rb"|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)
UTF8 = "utf-8"
WINDOWS_1252 = "cp1252"
AUTO = "auto"
_LABELS = {UTF8: "UTF-8", WINDOWS_1252: "Windows-1252"}


@dataclass(slots=True)
class FileEvents:
    """The events of one file, and how it was read (the summary names the encoding)."""

    format: str
    encoding: str
    events: Iterator[Incoming]

    @property
    def described(self) -> str:
        return f"{self.format}, {self.encoding}"


def encoding_label(codec: str, *, bom: bool = False) -> str:
    name = codecs.lookup(codec).name
    label = _LABELS.get(name, name)
    return f"{label} with BOM" if bom else label


def guess_encoding(stream: IO[bytes]) -> str:
    """UTF-8 when the file holds a BOM or any valid UTF-8 multi-byte sequence, or is valid
    UTF-8 throughout; Windows-1252 only when it has bytes that are not UTF-8 and no UTF-8
    sequence at all (what Excel writes on a French Windows PC). The stream is read line by
    line to the first decisive line, then put back where it was."""
    start = stream.tell()
    undecodable = False
    try:
        first = True
        while line := stream.readline(MAX_LINE_BYTES):
            if first and line.startswith(_BOM):
                return UTF8
            first = False
            if line.isascii():
                continue
            try:
                line.decode(UTF8)
                return UTF8
            except UnicodeDecodeError:
                if _UTF8_MULTIBYTE.search(line):
                    return UTF8
                undecodable = True
        return WINDOWS_1252 if undecodable else UTF8
    finally:
        stream.seek(start)


class _Lines:
    """Physical lines (the header is line 1), decoded one by one. A line that does not decode
    becomes an unusable event with its number in `unreadable`, and is skipped; `take_start`
    gives the number of the line where the CSV record just read began."""

    def __init__(self, stream: IO[bytes], codec: str, name: str) -> None:
        self.stream = stream
        self.codec = codec
        self.name = name
        self.unreadable: list[Incoming] = []
        self._start: int | None = None

    def __iter__(self) -> Iterator[str]:
        number = 0
        while line := self.stream.readline(MAX_LINE_BYTES):
            number += 1
            if number == 1 and line.startswith(_BOM):
                line = line[len(_BOM) :]
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

    def take_start(self) -> int:
        start, self._start = self._start or 0, None
        return start


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


def read_csv(stream: IO[bytes], name: str, codec: str = UTF8) -> Iterator[Incoming]:
    lines = _Lines(stream, codec, name)
    numbered = iter(lines)
    header = next(numbered, "")
    lines.take_start()
    delimiter = ";" if header.count(";") > header.count(",") else ","
    fields = next(csv.reader([header], delimiter=delimiter), [])
    for row in csv.DictReader(numbered, fieldnames=fields, delimiter=delimiter):
        number = lines.take_start()
        yield from lines.unreadable
        lines.unreadable.clear()
        if any(row.values()):
            yield Incoming(csv_row_to_event(row), f"{name}:{number}")
    yield from lines.unreadable


def _seekable(stream: IO[bytes]) -> IO[bytes]:
    """Standard input from a pipe is copied aside, so that it can be scanned then read."""
    if stream.seekable():
        return stream
    copy = tempfile.SpooledTemporaryFile(max_size=MAX_LINE_BYTES)  # noqa: SIM115
    shutil.copyfileobj(stream, copy)
    copy.seek(0)
    return cast(IO[bytes], copy)


def open_events(stream: IO[bytes], name: str, encoding: str = AUTO) -> FileEvents:
    """JSONL or CSV, told apart by the file name or, for stdin, by the first bytes.

    JSONL is UTF-8 (JSON's own rule); `encoding` applies to CSV: `auto`, or a codec name.
    """
    if not isinstance(stream, io.BufferedReader):
        stream = io.BufferedReader(cast(io.RawIOBase, stream))
    head = stream.peek(4096)[:4096]
    if not looks_like_csv(name, head):
        return FileEvents("JSONL", encoding_label(UTF8), read_jsonl(stream, name))
    if encoding == AUTO:
        stream = _seekable(stream)
        codec = guess_encoding(stream)
    else:
        codec = codecs.lookup(encoding).name
    label = encoding_label(codec, bom=head.startswith(_BOM))
    return FileEvents("CSV", label, read_csv(stream, name, codec))


def read_events(stream: IO[bytes], name: str, encoding: str = AUTO) -> Iterator[Incoming]:
    return open_events(stream, name, encoding).events
