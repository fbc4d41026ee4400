"""Reading events from files: JSONL (one event per line) and CSV (dotted-path headers)."""

from __future__ import annotations

import codecs
import io
import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, cast

from accrochage.errors import InputError
from accrochage.models.problems import Problem
from accrochage.streams.csv_events import BOM, MAX_LINE_BYTES, overlong_line, read_csv
from accrochage.streams.incoming import Incoming
from accrochage.streams.wide import Utf8Lines


def looks_like_csv(name: str, head: bytes) -> bool:
    if name.lower().endswith((".csv", ".tsv")):
        return True
    if name.lower().endswith((".jsonl", ".ndjson", ".json")):
        return False
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not stripped or stripped.startswith((b"{", b"[")):
        return False
    return CSV_KEY in _header_line(stripped).lower()


CSV_KEY = b"record_id"
"""Without a name that tells (stdin, `.txt`), CSV is a first line naming this column: every
CSV of events has one. Anything else is read as JSONL, so a first line that is neither (a
producer's garbage, a log line) is one unusable event and the JSON lines after it are read,
instead of a header that makes every event an unusable row and is itself kept nowhere."""


def _header_line(head: bytes) -> bytes:
    """The first line, or the second when the first is Excel's `sep=;`."""
    lines = head.split(b"\n", 2)
    if lines[0].strip().lower().startswith(b"sep=") and len(lines) > 1:
        return lines[1]
    return lines[0]


def read_jsonl(stream: IO[bytes], name: str) -> Iterator[Incoming]:
    number = 0
    while True:
        line = stream.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        number += 1
        if number == 1 and _cr_alone(line):
            raise InputError(
                f"{name}: line 1 holds several events separated by carriage returns: the "
                "file's lines end with CR alone (old Mac format); convert its line endings "
                "(CR to LF); no event of this file was read"
            )
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            yield overlong_line(stream, line, name, number)
            continue
        if line.strip():
            raw = line.rstrip(b"\r\n")
            problems = (Problem("event", JOINED_BY_CR),) if _cr_alone(raw) else ()
            yield Incoming(_utf8_line(raw), f"{name}:{number}", problems=problems)


JOINED_BY_CR = (
    "this line holds several events separated by carriage returns alone: the file mixes line "
    "endings (a part saved in the old Mac format); convert them (CR to LF) and ingest the "
    "file again (the events stored already are unchanged)"
)
"""Kept as one unusable event, said: before, only 'not valid JSON'."""


def _cr_alone(first: bytes) -> bool:
    """A line (the whole file, read as its first line with no LF in it) with carriage
    returns inside that are not whitespace of one JSON value: its events are separated by CR
    alone. JSON has no raw CR inside a string, so only such a file reads as one invalid
    line. A line nested too deeply to parse is not judged here (its decoding says so): its
    RecursionError ended `ingest` with a traceback, the events of its group not stored."""
    if first.endswith(b"\n") or b"\r" not in first or b"\r" not in first.rstrip(b"\r"):
        return False
    try:
        json.loads(first)
    except ValueError:
        return True
    except RecursionError:
        return False
    return False


def _utf8_line(line: bytes) -> bytes | str:
    """A line of a UTF-8 stream, as its bytes or, when one of its first two bytes is NUL, as
    text: JSON's own detection (`json.detect_encoding`) would read that line as UTF-16 or -32,
    saying it is not valid UTF-16 and keeping it garbled. It is UTF-8 like its neighbours (an
    undecodable byte is replaced); its NUL makes it invalid JSON."""
    if 0 in line[:2]:
        return line.decode(UTF8, "replace")
    return line


_UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}"
    rb"|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)
_WIDE_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)
_WIDE = {"utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"}


UTF8 = "utf-8"
WINDOWS_1252 = "cp1252"
AUTO = "auto"
_LABELS = {
    UTF8: "UTF-8",
    WINDOWS_1252: "Windows-1252",
    **{codec: codec.upper().replace("-LE", "LE").replace("-BE", "BE") for codec in _WIDE},
}


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
            if first and line.startswith(BOM):
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


def _seekable(stream: IO[bytes]) -> IO[bytes]:
    """Standard input from a pipe is copied aside, so that it can be scanned then read."""
    if stream.seekable():
        return stream
    copy = tempfile.SpooledTemporaryFile(max_size=MAX_LINE_BYTES)  # noqa: SIM115
    shutil.copyfileobj(stream, copy)
    copy.seek(0)
    return cast(IO[bytes], copy)


def _wide_codec(head: bytes, encoding: str) -> str | None:
    """UTF-16 or UTF-32, by the BOM (what Windows PowerShell's `>` and Excel's "Unicode text"
    write) or as named: their line breaks are two or four bytes."""
    if encoding != AUTO:
        named = codecs.lookup(encoding).name
        return named if named in _WIDE else None
    return next((codec for bom, codec in _WIDE_BOMS if head.startswith(bom)), None)


WIDE_SAMPLE = 64
"""The first bytes that must alternate a NUL and a character for UTF-16 without a BOM."""


def _wide_json(name: str, head: bytes) -> str | None:
    """UTF-16 without a BOM, told by its NUL bytes: every other byte of the first
    `WIDE_SAMPLE` is NUL, the others not (JSON's own rule, RFC 4627, looks at two bytes and
    read a UTF-8 line that begins with NUL as UTF-16). Such a JSONL file was read as lines
    of "not valid JSON", with no word of its encoding. Never for a file named as CSV."""
    sample = head[:WIDE_SAMPLE]
    if name.lower().endswith((".csv", ".tsv")) or len(sample) < WIDE_SAMPLE:
        return None
    firsts, seconds = sample[0::2], sample[1::2]
    if 0 not in firsts and not any(seconds):
        return "utf-16-le"
    if 0 not in seconds and not any(firsts):
        return "utf-16-be"
    return None


def open_events(stream: IO[bytes], name: str, encoding: str = AUTO) -> FileEvents:
    """JSONL or CSV, told apart by the file name or, for stdin, by the first bytes.

    JSONL is UTF-8 (JSON's own rule), or UTF-16/32 with a BOM (JSON allows them); `encoding`
    applies to CSV: `auto`, or a codec name.
    """
    if not isinstance(stream, io.BufferedReader):
        stream = io.BufferedReader(cast(io.RawIOBase, stream))
    head = stream.peek(4096)[:4096]
    wide = _wide_codec(head, encoding)
    unmarked = wide is None and encoding == AUTO and (wide := _wide_json(name, head)) is not None
    if wide is not None:
        label = encoding_label(wide, bom=encoding == AUTO and not unmarked)
        label += " without BOM" if unmarked else ""
        utf8 = cast(IO[bytes], Utf8Lines(stream, wide, name))
        if looks_like_csv(name, head.decode(wide, "replace").encode()):
            return FileEvents("CSV", label, read_csv(utf8, name, UTF8))
        return FileEvents("JSONL", label, read_jsonl(utf8, name))
    if not looks_like_csv(name, head):
        return FileEvents("JSONL", encoding_label(UTF8), read_jsonl(stream, name))
    if encoding == AUTO:
        stream = _seekable(stream)
        codec = guess_encoding(stream)
    else:
        codec = codecs.lookup(encoding).name
    label = encoding_label(codec, bom=head.startswith(BOM))
    return FileEvents("CSV", label, read_csv(stream, name, codec))


def read_events(stream: IO[bytes], name: str, encoding: str = AUTO) -> Iterator[Incoming]:
    return open_events(stream, name, encoding).events
