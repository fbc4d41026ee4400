"""Reading events from files: JSONL (one event per line) and CSV (dotted-path headers)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import IO, Any, cast

from accrochage.streams.ingest import Incoming

MAX_LINE_BYTES = 16 * 1024 * 1024
LIST_FIELDS = {"holder.first_names"}
BOOL_FIELDS = {"certified"}
INT_FIELDS = {"digital_level.general_score"}
JSON_FIELDS = {"digital_level.results"}


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

    A cell that does not convert is passed on as text, so validation names its field.
    """
    if path in LIST_FIELDS:
        return [part.strip() for part in value.split("|")]
    if path in BOOL_FIELDS and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    if path in INT_FIELDS and value.strip().lstrip("-").isdigit():
        return int(value)
    if path in JSON_FIELDS:
        try:
            return json.loads(value)
        except ValueError:
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


def read_csv(stream: IO[bytes], name: str) -> Iterator[Incoming]:
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    header = text.readline()
    delimiter = ";" if header.count(";") > header.count(",") else ","
    fields = next(csv.reader([header], delimiter=delimiter))
    reader = csv.DictReader(text, fieldnames=fields, delimiter=delimiter)
    for number, row in enumerate(reader, start=2):
        if not any(row.values()):
            continue
        yield Incoming(csv_row_to_event(row), f"{name}:{number}")


def read_events(stream: IO[bytes], name: str) -> Iterator[Incoming]:
    """JSONL or CSV, told apart by the file name or, for stdin, by the first bytes."""
    if not isinstance(stream, io.BufferedReader):
        stream = io.BufferedReader(cast(io.RawIOBase, stream))
    head = stream.peek(4096)[:4096]
    if looks_like_csv(name, head):
        return read_csv(stream, name)
    return read_jsonl(stream, name)
