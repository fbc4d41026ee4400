"""Hostile and real-world input on the command line: encodings, storage faults, a missing or
damaged state, processes started together on a fresh state."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from accrochage.app import build_core
from accrochage.commands.ingest import CHUNK
from accrochage.models.decode import decode
from accrochage.models.registry import Registry
from accrochage.settings import load_settings
from accrochage.state.sqlite.store import connect
from accrochage.streams.flush import Flusher
from accrochage.streams.flush_report import FlushReport
from accrochage.streams.ingest import Ingestor
from tests.factories import EMITTER
from tests.test_cli_tracker import (
    PYTHON_CLI,
    RECENT,
    outbox,
    outstanding_json,
    recent,
    run,
    write_jsonl,
)
from tests.test_tracker import NS, passages, write_config, xml_files

HEADER = [
    "record_id",
    "event_id",
    "certifier",
    "certification.type",
    "certification.code",
    "delivered_on",
    "obtention",
    "score",
    "holder.birth_name",
    "holder.first_names",
    "holder.birth_date",
    "holder.sex",
    "holder.birth_place.postal_code",
    "holder.birth_place.city",
]


def csv_row(number: int, birth_name: str, first_names: str) -> str:
    return (
        f"R-{number};e-{number};pix;RS;RS5875;{RECENT};PAR_SCORING;300;{birth_name};"
        f"{first_names};1990-02-03;F;75002;PARIS"
    )


def csv_text(rows: list[str]) -> str:
    return "\r\n".join([";".join(HEADER), *rows]) + "\r\n"


def stored_names(config: Path) -> dict[str, tuple[str, list[str]]]:
    """Birth and first names as stored, read straight from the state database."""
    state = config.parent / "var" / "state.db"
    with sqlite3.connect(state) as conn:
        rows = conn.execute("SELECT record_id, payload FROM contents").fetchall()
    out = {}
    for record_id, payload in rows:
        holder = json.loads(payload)["holder"]
        out[record_id] = (holder["birth_name"], holder["first_names"])
    return out


@pytest.fixture()
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path)


def ingest_stdin(config: Path, data: bytes) -> subprocess.CompletedProcess[bytes]:
    """`accrochage ingest -` in a process of its own, `data` on its standard input (a pipe)."""
    return subprocess.run(
        [*PYTHON_CLI, "--config", str(config), "ingest", "-"],
        input=data,
        capture_output=True,
        timeout=60,
        check=False,
    )


# --- encodings ------------------------------------------------------------------------------

FRENCH = [
    ("Lefèvre", "Hélène|Françoise"),
    ("Cœur", "Zoé"),
    ("D’Amico", "Noël|Gaëlle"),
    ("Bœuf-Garçon", "Agnès"),
]


def test_a_windows_1252_csv_from_excel_is_read_with_its_accents(
    config: Path, tmp_path: Path
) -> None:
    rows = [csv_row(i, name, firsts) for i, (name, firsts) in enumerate(FRENCH, start=1)]
    source = tmp_path / "excel.csv"
    source.write_bytes(csv_text(rows).encode("cp1252"))

    out = run(config, "ingest", str(source)).stdout
    assert f"{source}: CSV, Windows-1252" in out
    assert "4 events read (created 4)" in out
    assert "unusable: 0" in out
    names = stored_names(config)
    for number, (name, firsts) in enumerate(FRENCH, start=1):
        assert names[f"R-{number}"] == (name, firsts.split("|"))

    run(config, "flush", "--force")
    (path,) = xml_files(outbox(config))
    rendered = passages(path)
    assert rendered["R-2"].findtext(".//cpf:nomNaissance", namespaces=NS) == "Cœur"
    assert rendered["R-3"].findtext(".//cpf:nomNaissance", namespaces=NS) == "D’Amico"


def test_a_utf8_csv_with_one_bad_byte_keeps_every_other_row(config: Path, tmp_path: Path) -> None:
    """1301 lines, a byte that is not UTF-8 on line 1201: only that line is lost."""
    rows = [csv_row(i, f"Lefèvre-{i}", "Hélène|Zoé") for i in range(2, 1302)]
    lines = [line.encode("utf-8") for line in csv_text(rows).split("\r\n")]
    assert lines[1200].startswith(b"R-1201;")
    lines[1200] = lines[1200].replace("Lefèvre".encode(), b"Lef\xe8vre")  # a cp1252 byte
    source = tmp_path / "export.csv"
    source.write_bytes(b"\r\n".join(lines))

    result = run(config, "ingest", str(source))
    out = result.stdout
    assert f"{source}: CSV, UTF-8" in out
    assert "1300 events read" in out
    assert "accepted: 1299" in out
    assert "unusable: 1" in out
    assert f"{source}:1201 " in out
    assert "Traceback" not in result.output

    names = stored_names(config)
    assert len(names) == 1299
    assert "R-1201" not in names
    assert names["R-1200"] == ("Lefèvre-1200", ["Hélène", "Zoé"])
    assert names["R-1301"] == ("Lefèvre-1301", ["Hélène", "Zoé"])  # after the bad line


def test_a_utf8_csv_with_a_bom_and_a_bad_byte_before_any_accent(
    config: Path, tmp_path: Path
) -> None:
    rows = [csv_row(2, "Martin", "Paul"), csv_row(3, "Lefèvre", "Zoé")]
    data = ("\ufeff" + csv_text(rows)).encode("utf-8").replace(b"Martin", b"Mart\xefn")
    source = tmp_path / "bom.csv"
    source.write_bytes(data)
    out = run(config, "ingest", str(source)).stdout
    assert f"{source}: CSV, UTF-8 with BOM" in out
    assert f"{source}:2 " in out and "unusable: 1" in out
    assert stored_names(config)["R-3"] == ("Lefèvre", ["Zoé"])


def test_a_csv_header_that_is_not_the_file_encoding_refuses_the_file(
    config: Path, tmp_path: Path
) -> None:
    """One byte of the header not UTF-8 in a UTF-8 file: the header would name a column
    wrongly and every row would be an invalid record; the file is refused before any row,
    with the byte named, and the file ingested before it stays stored."""
    good = tmp_path / "good.csv"
    good.write_bytes(csv_text([csv_row(1, "Lefèvre", "Zoé")]).encode("utf-8"))
    rows = [csv_row(i, "Lefèvre", "Zoé") for i in range(2, 5)]
    data = csv_text(rows).encode("utf-8")
    header_end = data.index(b"\r\n")
    bad = tmp_path / "bad.csv"
    bad.write_bytes(data[:header_end] + b";commentaire_\xe9" + data[header_end:])

    result = run(config, "ingest", str(good), str(bad), code=1)
    assert "Traceback" not in result.output
    assert f"{bad}: line 1, the CSV header, is not utf-8 (byte 0xE9 at byte" in result.stderr
    assert "--encoding" in result.stderr
    assert "1 events read (created 1)" in result.stdout
    assert set(stored_names(config)) == {"R-1"}  # nothing of bad.csv

    checked = run(config, "check", str(bad), code=1)
    assert "line 1, the CSV header, is not utf-8" in checked.stderr

    forced = run(config, "ingest", "--encoding", "cp1252", str(bad), code=None)
    assert "line 1, the CSV header" not in forced.output  # read, its column then named


def test_the_encoding_can_be_forced(config: Path, tmp_path: Path) -> None:
    source = tmp_path / "latin.csv"
    source.write_bytes(csv_text([csv_row(1, "Lefèvre", "Zoé")]).encode("latin-1"))
    out = run(config, "ingest", "--encoding", "latin-1", str(source)).stdout
    assert f"{source}: CSV, iso8859-1" in out
    assert stored_names(config)["R-1"] == ("Lefèvre", ["Zoé"])
    refused = run(config, "ingest", "--encoding", "klingon", str(source), code=2)
    assert "klingon" in refused.stderr


@pytest.mark.parametrize("command", ["ingest", "check"])
def test_an_encoding_that_does_not_fit_is_said_never_a_traceback(
    config: Path, tmp_path: Path, command: str
) -> None:
    """`--encoding base64` (a codec, but of bytes) ended the command with a LookupError's
    traceback; `--encoding utf-16` for a UTF-8 file, or `punycode`, with a UnicodeError's
    (not a UnicodeDecodeError): the files after it were never read."""
    source = tmp_path / "e.csv"
    source.write_text(csv_text([csv_row(1, "Lefèvre", "Zoé")]), encoding="utf-8")
    for codec in ("base64", "rot13", "undefined"):
        refused = run(config, command, "--encoding", codec, str(source), code=2)
        assert f"'{codec}' is not a text encoding" in refused.stderr, refused.stderr
    for codec in ("utf-16", "punycode"):
        said = run(config, command, "--encoding", codec, str(source), code=1)
        assert "Traceback" not in said.output
        assert f"{source}: " in said.stderr and "is not" in said.stderr, said.stderr


@pytest.mark.parametrize("codec", ["utf-16", "utf-32"])
def test_a_utf16_or_utf32_csv_with_its_bom_is_read_without_being_told(
    config: Path, tmp_path: Path, codec: str
) -> None:
    """What Windows PowerShell's `>` writes: its line breaks are two bytes, and a byte 0x0A
    may be half of a character (`Ċ` is 0x0A 0x01). Split as bytes, the header was refused as
    not UTF-16 (`--encoding utf-16`), or guessed Windows-1252, every row unusable."""
    rows = [csv_row(1, "Lefèvre", "Zoé"), csv_row(2, "Ċelik", "Ġorġ"), csv_row(3, "Ng", "Ana")]
    source = tmp_path / "wide.csv"
    source.write_bytes(csv_text(rows).encode(codec))
    out = run(config, "ingest", str(source)).stdout
    assert f"{source}: CSV, {codec.upper()} with BOM" in out
    assert "3 events read (created 3)" in out and "accepted: 3" in out, out
    names = stored_names(config)
    assert names["R-1"] == ("Lefèvre", ["Zoé"]) and names["R-2"] == ("Ċelik", ["Ġorġ"])


def test_a_utf16_file_named_by_encoding_and_a_tab_separated_one(
    config: Path, tmp_path: Path
) -> None:
    """Excel's "Unicode text" is UTF-16 and separates cells by tabs."""
    text = csv_text([csv_row(1, "Lefèvre", "Zoé")]).replace(";", "\t")
    source = tmp_path / "excel.txt.csv"
    source.write_bytes(text.encode("utf-16-le"))  # no BOM: the encoding is told
    out = run(config, "ingest", "--encoding", "utf-16-le", str(source)).stdout
    assert "accepted: 1" in out, out
    assert stored_names(config)["R-1"] == ("Lefèvre", ["Zoé"])


def test_a_utf16_jsonl_file_is_read_line_by_line(config: Path, tmp_path: Path) -> None:
    """JSON allows UTF-16: the first line stored, the others unusable, and a phantom event
    out of the last line break's second byte."""
    lines = [json.dumps(recent(f"J-{n}"), ensure_ascii=False) for n in range(1, 4)]
    source = tmp_path / "events.jsonl"
    source.write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-16"))
    out = run(config, "ingest", str(source)).stdout
    assert "JSONL, UTF-16 with BOM" in out
    assert "3 events read (created 3)" in out and "unusable: 0" in out, out


def test_a_utf16_file_broken_midway_keeps_what_came_before_and_says_where(
    config: Path, tmp_path: Path
) -> None:
    data = csv_text([csv_row(1, "Lefèvre", "Zoé")]).encode("utf-16")
    source = tmp_path / "broken.csv"
    source.write_bytes(data + b"\x00")  # half a character at the end
    result = run(config, "ingest", str(source), code=1)
    assert "Traceback" not in result.output
    assert "is not valid utf-16 at byte" in result.stderr, result.stderr
    assert set(stored_names(config)) == {"R-1"}


def test_check_of_a_utf16_file_broken_midway_does_not_say_it_stored_anything(
    config: Path, tmp_path: Path
) -> None:
    """`check` stores nothing, yet its stop said "the events before it were stored"."""
    data = csv_text([csv_row(1, "Lefèvre", "Zoé")]).encode("utf-16")
    source = tmp_path / "broken.csv"
    source.write_bytes(data + b"\x00")  # half a character at the end
    result = run(config, "check", str(source), code=1)
    assert "is not valid utf-16 at byte" in result.stderr, result.stderr
    assert "stored" not in result.stderr, result.stderr
    assert "1 events checked" in result.stdout and "nothing stored" in result.stdout


def test_a_file_that_cannot_be_read_stops_no_other(config: Path, tmp_path: Path) -> None:
    """A mistyped name among several files stopped the command there, and a folder or a
    device was refused only when read (`/dev/zero` was read for ever): each is now said, and
    the files after it are read (as import-report and check-xml do); exit 1."""
    first = write_jsonl(tmp_path / "first.jsonl", [recent(f"F-{n}") for n in range(5)])
    last = write_jsonl(tmp_path / "last.jsonl", [recent("F-9")])
    missing = tmp_path / "tpyo.jsonl"
    folder = tmp_path / "folder.jsonl"
    folder.mkdir()
    names = [str(first), str(missing), str(folder), "/dev/zero", str(last)]
    result = run(config, "ingest", *names, code=1)
    assert "6 events read (created 6)" in result.stdout, result.stdout
    assert f"error: cannot read {missing}: No such file" in result.stderr
    assert f"error: cannot read {folder}: it is a folder" in result.stderr
    assert "error: cannot read /dev/zero: it is a device" in result.stderr
    assert len(stored_names(config)) == 6
    checked = run(config, "check", *names, code=1)
    assert "6 events checked: 6 valid" in checked.stdout
    assert f"error: cannot read {missing}: No such file" in checked.stderr
    assert "error: cannot read /dev/zero: it is a device" in checked.stderr


def test_a_csv_whose_lines_end_with_cr_alone_is_refused_and_the_next_file_read(
    config: Path, tmp_path: Path
) -> None:
    """Excel's "CSV (Macintosh)" ends lines with CR alone: the whole file read as one line,
    its header raised csv.Error and the command stopped there, the files after it unread."""
    first = tmp_path / "a.csv"
    first.write_text(csv_text([csv_row(1, "Dupont", "Anne")]), encoding="utf-8")
    mac = tmp_path / "mac.csv"
    mac.write_bytes(csv_text([csv_row(2, "Durand", "Paul")]).replace("\r\n", "\r").encode())
    last = tmp_path / "b.csv"
    last.write_text(csv_text([csv_row(3, "Martin", "Léa")]), encoding="utf-8")
    for command, said in (("check", "2 events checked: 2 valid"), ("ingest", "2 events read")):
        result = run(config, command, str(first), str(mac), str(last), code=1)
        assert "Traceback" not in result.output
        assert said in result.stdout, result.stdout
        assert f"{mac}: line 1, the CSV header: it holds a carriage return" in result.stderr
        assert "CR alone" in result.stderr and "Durand" not in result.stderr
    assert set(stored_names(config)) == {"R-1", "R-3"}


def test_a_jsonl_whose_lines_end_with_cr_alone_is_refused_and_the_next_file_read(
    config: Path, tmp_path: Path
) -> None:
    """Events separated by CR alone read as one line: it was kept as one unusable event
    ("Extra data"), the file's events lost to the count. A single event whose JSON holds a
    CR as whitespace, without a final LF, is still one event."""
    mac = tmp_path / "mac.jsonl"
    mac.write_bytes("\r".join(json.dumps(recent(f"M-{n}")) for n in (1, 2)).encode() + b"\r")
    one = tmp_path / "one.jsonl"
    one.write_bytes(json.dumps(recent("R-1"), indent=1).replace("\n", "\r").encode())
    last = tmp_path / "last.jsonl"
    last.write_text(json.dumps(recent("R-2")) + "\n", encoding="utf-8")
    for command, said in (("check", "2 events checked: 2 valid"), ("ingest", "2 events read")):
        result = run(config, command, str(mac), str(one), str(last), code=1)
        assert "Traceback" not in result.output
        assert said in result.stdout, result.stdout
        assert f"{mac}: line 1 holds several events separated by carriage returns" in (
            result.stderr
        )
        assert "CR alone" in result.stderr and "Haba" not in result.stderr
    assert set(stored_names(config)) == {"R-1", "R-2"}


def test_events_joined_by_a_cr_further_in_a_jsonl_are_said_so(config: Path, tmp_path: Path) -> None:
    """A file whose second part was saved in the old Mac format: that part reads as one line,
    kept as one unusable event that said only 'not valid JSON'."""
    mixed = tmp_path / "mixed.jsonl"
    joined = "\r".join(json.dumps(recent(f"M-{n}")) for n in (2, 3))
    mixed.write_text(json.dumps(recent("M-1")) + "\n" + joined + "\r\n", encoding="utf-8")
    result = run(config, "ingest", str(mixed))
    assert "2 events read" in result.stdout, result.stdout
    assert f"{mixed}:2" in result.stdout and "separated by carriage returns alone" in (
        result.stdout
    ), result.stdout
    assert "Haba" not in result.output
    assert set(stored_names(config)) == {"M-1"}


@pytest.mark.parametrize("first", [False, True], ids=["further", "first line"])
def test_a_line_with_a_cr_inside_nested_too_deeply_costs_only_itself(
    config: Path, tmp_path: Path, first: bool
) -> None:
    """The check for events joined by CR parsed such a line again, and its RecursionError
    ended `ingest` with a traceback: the events before it in its group never stored, the
    lines after it never read."""
    deep = '{"record_id": "CR-DEEP",\r"x": ' + "[" * 5000 + "]" * 5000 + "}"
    lines = [deep] if first else [json.dumps(recent("CR-1")), deep]
    source = tmp_path / "deep.jsonl"
    source.write_bytes(("\n".join([*lines, json.dumps(recent("CR-2"))]) + "\n").encode())
    result = run(config, "ingest", str(source))
    assert "Traceback" not in result.output
    assert "nested too deeply" in result.stdout, result.stdout
    assert set(stored_names(config)) == ({"CR-2"} if first else {"CR-1", "CR-2"})


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_a_jsonl_in_utf16_without_a_bom_is_read(config: Path, tmp_path: Path, codec: str) -> None:
    """JSON's own reader tells UTF-16 by where the NUL bytes fall (`json.detect_encoding`):
    such a file read as lines of 'not valid JSON', with no word of its encoding."""
    wide = tmp_path / "wide.jsonl"
    lines = "".join(json.dumps(recent(f"W-{n}")) + "\r\n" for n in (1, 2))
    wide.write_bytes(lines.encode(codec))
    result = run(config, "ingest", str(wide))
    label = "UTF-16LE" if codec.endswith("le") else "UTF-16BE"
    assert f"{wide}: JSONL, {label} without BOM" in result.stdout, result.stdout
    assert "2 events read (created 2)" in result.stdout, result.stdout
    assert set(stored_names(config)) == {"W-1", "W-2"}


def test_a_pipe_is_read_as_a_file_of_events(config: Path, tmp_path: Path) -> None:
    """`ingest <(zcat events.jsonl.gz)`: the shell gives a pipe's path."""
    fifo = tmp_path / "events.jsonl"
    os.mkfifo(fifo)
    line = (json.dumps(recent("P-1")) + "\n").encode()
    writer = threading.Thread(target=lambda: fifo.write_bytes(line))
    writer.start()
    result = run(config, "ingest", str(fifo))
    writer.join(30)
    assert "1 events read (created 1)" in result.stdout, result.stdout


def test_a_windows_1252_csv_on_standard_input(config: Path) -> None:
    """A pipe cannot be read twice: the guess works on a copy."""
    data = csv_text([csv_row(1, "Lefèvre", "Françoise")]).encode("cp1252")
    done = ingest_stdin(config, data)
    assert done.returncode == 0, done.stderr.decode()
    assert "-: CSV, Windows-1252" in done.stdout.decode()
    assert stored_names(config)["R-1"] == ("Lefèvre", ["Françoise"])


def test_a_jsonl_line_that_is_not_utf8_is_unusable_and_the_rest_is_read(
    config: Path, tmp_path: Path
) -> None:
    good = [json.dumps(recent(f"J-{i}"), ensure_ascii=False) for i in range(4)]
    bad = json.dumps(recent("J-BAD")).replace("Bart", "B\xe9rt").encode("cp1252")
    source = tmp_path / "events.jsonl"
    source.write_bytes(b"\n".join([good[0].encode(), bad, *(g.encode() for g in good[1:])]))
    result = run(config, "ingest", str(source))
    assert f"{source}: JSONL, UTF-8" in result.stdout
    assert f"{source}:2 " in result.stdout and "unusable: 1" in result.stdout
    assert "JSON is UTF-8: send it, or save its file, as UTF-8" in result.stdout
    assert {r["record_id"] for r in outstanding_json(config)} == {f"J-{i}" for i in range(4)}


def test_a_csv_line_not_in_the_files_encoding_says_so_in_csv_terms(
    config: Path, tmp_path: Path
) -> None:
    """A line of a Windows-1252 CSV that is not Windows-1252 was said to be "not valid text
    (utf-8: ...); JSON is UTF-8", naming the first byte that is not UTF-8 (here the `è`)."""
    rows = [csv_row(1, "Lefèvre", "Zoé"), csv_row(2, "Lefèvre\x81", "Zoé"), csv_row(3, "Ng", "Ana")]
    data = b"".join(
        line.encode("cp1252", "ignore") if "\x81" not in line else line.encode("latin-1")
        for line in csv_text(rows).splitlines(keepends=True)
    )
    source = tmp_path / "excel.csv"
    source.write_bytes(data)
    result = run(config, "ingest", str(source))
    assert f"{source}: CSV, Windows-1252" in result.stdout, result.stdout
    assert "unusable: 1" in result.stdout and set(stored_names(config)) == {"R-1", "R-3"}
    said = next(line for line in result.stdout.splitlines() if f"{source}:3 " in line)
    assert "line 3 is not cp1252 (byte 0x81 at byte " in said, said
    assert "JSON" not in said and "utf-8" not in said, said


# --- storage faults -------------------------------------------------------------------------


def _file_size_limit(limit: int) -> Any:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def cli_limited(config: Path, limit: int, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a process that cannot grow any file beyond `limit` bytes (RLIMIT_FSIZE): the
    kernel refuses its writes as a full disk would, without touching the machine's disks."""
    return subprocess.run(
        [*PYTHON_CLI, "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=_file_size_limit(limit),
    )


def test_ingest_on_a_full_disk_prints_what_was_stored_and_stops_cleanly(
    config: Path, tmp_path: Path
) -> None:
    source = write_jsonl(tmp_path / "many.jsonl", [recent(f"D-{i:05}") for i in range(12000)])
    missing = tmp_path / "tpyo.jsonl"
    result = cli_limited(config, 20_000_000, "ingest", str(missing), str(source))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    # The file not read before the fault is said too (it was dropped, the fault exiting).
    said, reason = result.stderr.strip().splitlines()
    assert said.startswith(f"error: cannot read {missing}")
    assert reason.startswith("error: ingest stopped: the state database")
    assert "free disk space" in reason
    assert "stopped by the error below" in result.stdout
    read = int(result.stdout.split(" events read")[0].splitlines()[-1])
    assert 0 < read < 12000
    stored = json.loads(run(config, "summary", "--format", "json").stdout)["records"]
    assert stored == read  # what the summary says was stored, is


def test_flush_on_a_full_disk_exits_1_without_a_traceback(config: Path, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "many.jsonl", [recent(f"F-{i:05}") for i in range(3000)])
    run(config, "ingest", str(source))
    result = cli_limited(config, 100_000, "flush", "--force")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: flush stopped: the state database")
    assert all(row["status"] == "pending" for row in outstanding_json(config))


def test_a_damaged_state_database_is_refused_at_start(config: Path, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "many.jsonl", [recent(f"C-{i:04}") for i in range(400)])
    run(config, "ingest", str(source))
    state = config.parent / "var" / "state.db"
    data = bytearray(state.read_bytes())
    page = 4096
    assert len(data) > 20 * page
    data[10 * page : 12 * page] = b"\x5a" * (2 * page)  # two pages of the tables overwritten
    state.write_bytes(bytes(data))
    for command in (["outstanding"], ["ingest", str(source)], ["flush"]):
        result = run(config, *command, code=2)
        assert "is damaged" in result.stderr and "backup" in result.stderr, command
        assert "Traceback" not in result.stderr


def test_a_damaged_state_beside_an_old_wal_says_how_a_restore_goes_wrong(
    config: Path, tmp_path: Path
) -> None:
    """A backup copied over the state while a killed command's `-wal` stayed beside it: SQLite
    replays that WAL onto the backup, and "restore the last backup" sent the operator round
    in a loop. The message names the file to remove."""
    source = write_jsonl(tmp_path / "many.jsonl", [recent(f"W-{i:04}") for i in range(400)])
    run(config, "ingest", str(source))
    state = config.parent / "var" / "state.db"
    data = bytearray(state.read_bytes())
    data[10 * 4096 : 12 * 4096] = b"\x5a" * (2 * 4096)
    state.write_bytes(bytes(data))
    wal = state.with_name("state.db-wal")
    result = run(config, "outstanding", code=2)
    assert "is damaged" in result.stderr and "state.db-wal" not in result.stderr
    wal.write_bytes(b"\0" * 4096)  # a WAL SQLite cannot read: left as it is
    result = run(config, "outstanding", code=2)
    assert f"remove {wal} and state.db-shm, then copy the backup again" in result.stderr


def test_a_file_that_is_not_a_database_is_refused(config: Path) -> None:
    state = config.parent / "var" / "state.db"
    state.parent.mkdir(parents=True)
    state.write_bytes(b"certainly not SQLite " * 500)
    result = run(config, "ingest", "-", code=2)
    assert "is damaged (file is not a database)" in result.stderr


# --- a missing state, a fresh state -------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [["outstanding"], ["summary"], ["retry", "X-1"], ["deposited", "0123456789abcdef"]],
)
def test_reading_commands_refuse_a_state_that_does_not_exist(
    tmp_path: Path, command: list[str]
) -> None:
    mistyped = tmp_path / "var" / "stat.db"
    config = write_config(tmp_path, paths={"state": mistyped})
    result = run(config, *command, code=2)
    assert "paths.state" in result.stderr and str(mistyped) in result.stderr
    assert not mistyped.exists()


RELEASED_TOGETHER = (
    "import sys; from accrochage.cli import main; "
    "print('ready', flush=True); sys.stdin.readline(); main()"
)


def start_together(config: Path, commands: list[list[str]]) -> list[tuple[int, str]]:
    """Start the CLI processes, wait until each has imported everything, then release them all
    at once: they reach the fresh state together, whatever the machine's speed."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", RELEASED_TOGETHER, "--config", str(config), *command],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in commands
    ]
    try:
        for process in processes:
            assert process.stdout is not None and process.stdout.readline() == "ready\n"
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        return [(p.wait(timeout=120), p.communicate()[1]) for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(30)
                process.communicate(timeout=30)


def test_processes_started_together_on_a_fresh_state_all_succeed(tmp_path: Path) -> None:
    """Each process migrates the new database under the write lock: one creates the tables,
    the others find them (before: `table records already exists`, most times)."""
    for attempt in range(3):
        folder = tmp_path / f"attempt-{attempt}"
        folder.mkdir()
        config = write_config(folder)
        sources = [write_jsonl(folder / f"e{i}.jsonl", [recent(f"P-{i}")]) for i in range(6)]
        outcomes = start_together(config, [["ingest", str(source)] for source in sources])
        assert [code for code, _ in outcomes] == [0] * 6, outcomes
        assert len(outstanding_json(config)) == 6


# --- score ----------------------------------------------------------------------------------


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_a_score_that_is_not_a_number_is_a_field_error(
    config: Path, tmp_path: Path, literal: str
) -> None:
    line = json.dumps(recent("S-1"))
    line = line.replace('"score": "324"', f'"score": {literal}')
    assert literal in line
    source = tmp_path / "s.jsonl"
    source.write_text(line + "\n", encoding="utf-8")
    out = run(config, "ingest", str(source)).stdout
    assert "invalid:  1" in out
    (row,) = outstanding_json(config)
    assert [e["field"] for e in row["errors"]] == ["score"]
    assert "finite" in row["errors"][0]["message"]
    # Not JSON, so never written back as such: every output is strict JSON, and the stored
    # content keeps a marker that no field accepts (read again, it is still invalid).
    shown = run(config, "show", "S-1", "--format", "json").stdout
    detail = json.loads(shown, parse_constant=_refuse_constant)
    content = detail["content"]
    assert content["score"] == {"not_json": literal}
    again = decode(json.dumps(content), Registry(EMITTER, []), date.today())
    assert "score" in [p.field for p in again.errors]


def _refuse_constant(name: str) -> None:
    raise AssertionError(f"{name} is not JSON")


def test_a_decimal_score_keeps_its_digits_as_written(config: Path, tmp_path: Path) -> None:
    scores = {"S-1": "12.345678901234567890123", "S-2": "1.50", "S-3": "7", "S-4": "2.5E+3"}
    lines = [
        json.dumps(recent(rid)).replace('"score": "324"', f'"score": {value}')
        for rid, value in scores.items()
    ]
    source = tmp_path / "s.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = run(config, "ingest", str(source)).stdout
    assert "accepted: 4" in out
    run(config, "flush", "--force")
    (path,) = xml_files(outbox(config))
    rendered = passages(path)
    for rid, value in scores.items():
        assert rendered[rid].findtext("cpf:scoring", namespaces=NS) == value


def _stored_records(state: Path) -> int:
    if not state.exists():
        return 0
    with contextlib.closing(sqlite3.connect(f"file:{state}?mode=ro", uri=True)) as db:
        try:
            return int(db.execute("SELECT count(*) FROM records").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def _ingesting_through_a_pipe(config: Path, record_ids: list[str]) -> subprocess.Popen[bytes]:
    """`ingest -` given these events through a pipe left open: the input does not end."""
    ingesting = subprocess.Popen(
        [*PYTHON_CLI, "--config", str(config), "ingest", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert ingesting.stdin is not None
    events = [json.dumps(recent(record_id)) for record_id in record_ids]
    ingesting.stdin.write(("\n".join(events) + "\n").encode())
    ingesting.stdin.flush()
    return ingesting


def test_ctrl_c_during_ingest_prints_what_was_stored(config: Path, tmp_path: Path) -> None:
    """Ctrl-C printed `Aborted!` and nothing else: the operator could not tell what of the
    file was stored. The events come through a pipe kept open, so that the interruption
    lands after groups are stored and before the input ends, whatever the machine's speed."""
    state = config.parent / "var" / "state.db"

    def stored() -> int:
        return _stored_records(state)

    ingesting = _ingesting_through_a_pipe(config, [f"I-{n}" for n in range(5 * CHUNK + 10)])
    try:
        deadline = time.monotonic() + 60
        while stored() < CHUNK:
            assert time.monotonic() < deadline, "no group was ever stored"
            time.sleep(0.05)
        ingesting.send_signal(signal.SIGINT)
        out, err = ingesting.communicate(timeout=60)
    finally:
        if ingesting.poll() is None:
            ingesting.kill()
            ingesting.communicate(timeout=30)
    assert ingesting.returncode == 130, err.decode()
    said = out.decode()
    assert "Traceback" not in said + err.decode()
    assert "-: interrupted (Ctrl-C); every event counted above is stored" in said, said
    counted = int(said.split(" events read (created ")[0].rsplit("\n", 1)[-1])
    assert counted == stored() >= CHUNK, (counted, stored())


@pytest.mark.parametrize("processes", [0, 1, 2])
def test_a_group_read_is_stored_while_the_input_stays_open(
    config: Path, tmp_path: Path, processes: int
) -> None:
    """With decode processes, `ingest` read several groups ahead before storing the first:
    from a pipe that stays open (a producer that pauses), one full group sat read and
    decoded, unstored, for as long as the pipe gave nothing (with two processes, even five
    groups did). The reading now runs in a thread of its own."""
    with config.open("a", encoding="utf-8") as out:
        out.write(f"\n[ingest]\ndecode_processes = {processes}\n")
    state = config.parent / "var" / "state.db"
    ingesting = _ingesting_through_a_pipe(config, [f"P-{n}" for n in range(CHUNK + 10)])
    try:
        deadline = time.monotonic() + 120
        while _stored_records(state) < CHUNK:
            assert ingesting.poll() is None, ingesting.communicate(timeout=30)
            assert time.monotonic() < deadline, "the group read was not stored"
            time.sleep(0.05)
        assert _stored_records(state) == CHUNK  # the 10 after it wait for the input's end
        out, err = ingesting.communicate(timeout=120)  # closes the input
    finally:
        if ingesting.poll() is None:
            ingesting.kill()
            ingesting.communicate(timeout=30)
    assert ingesting.returncode == 0, err.decode()
    assert f"{CHUNK + 10} events read (created {CHUNK + 10})" in out.decode()
    assert _stored_records(state) == CHUNK + 10


def test_ctrl_c_right_after_a_commit_still_counts_that_group(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Raised between a group's commit and its count, the interruption left stored events
    out of the summary: it now waits for the count."""
    real = Ingestor.ingest

    def then_interrupted(self: Ingestor, items: Any) -> Any:
        results = real(self, items)  # committed
        os.kill(os.getpid(), signal.SIGINT)
        return results

    monkeypatch.setattr(Ingestor, "ingest", then_interrupted)
    source = write_jsonl(tmp_path / "i.jsonl", [recent(f"IC-{n}") for n in range(3)])
    result = run(config, "ingest", str(source), code=130)
    assert "3 events read (created 3)" in result.stdout, result.stdout
    assert "interrupted (Ctrl-C); every event counted above is stored" in result.stdout
    assert len(stored_names(config)) == 3


def test_an_ingest_started_with_ctrl_c_ignored_is_not_interrupted(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A script's background command (`accrochage ingest big.jsonl &`) starts with SIGINT
    ignored: a Ctrl-C meant for the script reaches its whole process group. The wait for a
    group's count caught it all the same and stopped the ingest (exit 130) when it came
    while a group was stored, most of an ingest's time."""
    real = Ingestor.ingest

    def then_interrupted(self: Ingestor, items: Any) -> Any:
        results = real(self, items)
        os.kill(os.getpid(), signal.SIGINT)
        return results

    monkeypatch.setattr(Ingestor, "ingest", then_interrupted)
    source = write_jsonl(tmp_path / "i.jsonl", [recent(f"IG-{n}") for n in range(3)])
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        result = run(config, "ingest", str(source))
    finally:
        signal.signal(signal.SIGINT, previous)
    assert "3 events read (created 3)" in result.stdout, result.stdout
    assert "interrupted" not in result.stdout
    assert len(stored_names(config)) == 3


def test_ctrl_c_during_flush_says_what_was_written_and_the_next_flush_writes_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C printed `Aborted!` (exit 1), and `doctor` said nothing of the batches left cut
    and not written. Interrupted right after its first file is recorded, whatever the
    machine's speed."""
    config = write_config(tmp_path, batching={"max_records": 2})
    run(
        config,
        "ingest",
        str(write_jsonl(tmp_path / "f.jsonl", [recent(f"FC-{n}") for n in range(5)])),
    )
    real = Flusher._record

    def then_interrupted(self: Flusher, *args: Any) -> None:
        real(self, *args)
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(Flusher, "_record", then_interrupted)
    result = run(config, "flush", "--force", code=130)
    assert result.stdout.count("wrote ") == 1, result.stdout
    assert "interrupted (Ctrl-C): every file printed above is written and recorded" in result.stdout
    monkeypatch.setattr(Flusher, "_record", real)
    assert run(config, "flush").stdout.count("wrote ") == 2


def test_doctor_names_batches_cut_and_not_written(tmp_path: Path) -> None:
    """What a flush interrupted while its render processes wrote ahead leaves behind."""
    config = write_config(tmp_path, batching={"max_records": 2})
    run(
        config,
        "ingest",
        str(write_jsonl(tmp_path / "d.jsonl", [recent(f"DC-{n}") for n in range(5)])),
    )
    core = build_core(load_settings(config))
    try:
        core.flusher.cut(FlushReport(), force=True)
    finally:
        core.close()
    doctor = run(config, "doctor", code=None)
    assert "3 batch(es) cut and not recorded as written" in doctor.stdout, doctor.stdout
    assert doctor.exit_code != 0, "an operator's finding"
    assert run(config, "flush").stdout.count("wrote ") == 3
    assert "cut and not recorded" not in run(config, "doctor", code=None).stdout


def _open_at_once(path: str, barrier: Any, answers: Any) -> None:
    barrier.wait()
    try:
        connect(Path(path)).close()
        answers.put("ok")
    except sqlite3.Error as exc:
        answers.put(repr(exc))


def test_a_fresh_database_switched_to_wal_by_several_processes_at_once(tmp_path: Path) -> None:
    """Switching a new database to WAL answered `database is locked` at once, without the
    busy handler, to a process that switched it while another did: 17 of 240 such opens
    failed (the flake of the test above). Each now waits within the busy timeout."""
    context = multiprocessing.get_context("fork")
    failed: list[str] = []
    for attempt in range(20):
        path = str(tmp_path / f"{attempt}.db")
        barrier, answers = context.Barrier(6), context.Queue()
        processes = [
            context.Process(target=_open_at_once, args=(path, barrier, answers)) for _ in range(6)
        ]
        for process in processes:
            process.start()
        said = [answers.get(timeout=120) for _ in processes]
        for process in processes:
            process.join(60)
        failed += [answer for answer in said if answer != "ok"]
    assert failed == []


# --- what a sender chooses, bounded ---------------------------------------------------------


def test_a_garbage_first_line_on_standard_input_costs_only_itself(config: Path) -> None:
    """Without a name that tells, a first line that is neither JSON nor a CSV header naming
    `record_id` (a producer's log line, binary bytes) does not make the input a CSV: the line
    is one unusable event, kept, and the JSON events after it are stored."""
    for first in (b"garbage line from a broken producer", b"\x00\x01binary"):
        events = [json.dumps(recent(f"G-{first[:1].hex()}-{i}")).encode() for i in range(2)]
        done = ingest_stdin(config, b"\n".join([first, *events]) + b"\n")
        out = done.stdout.decode()
        assert done.returncode == 0, done.stderr.decode()
        assert "-: JSONL, UTF-8" in out, out
        assert "3 events read (created 2, unusable 1)" in out, out
    kept = json.loads(run(config, "unusable", "--format", "json").stdout)
    assert sorted(row["source"] for row in kept) == ["-:1", "-:1"]
    assert "garbage line from a broken producer" in {row["raw"] for row in kept}


def test_a_csv_header_on_standard_input_is_still_read_as_csv(config: Path) -> None:
    data = ("sep=;\r\n" + csv_text([csv_row(1, "Martin", "Paul")])).encode()
    done = ingest_stdin(config, data)
    assert done.returncode == 0, done.stderr.decode()
    assert "-: CSV, UTF-8" in done.stdout.decode()
    assert stored_names(config)["R-1"] == ("Martin", ["Paul"])


def test_the_errors_of_an_unusable_event_are_capped(config: Path, tmp_path: Path) -> None:
    """A body of lone surrogates with no record_id made one error each (1.8 million from a
    16 MiB request: a 236 MB answer and as much in the state). Capped like any event's."""
    raw = '{"event_id": "sg", "x": [' + ", ".join(['"\\ud800"'] * 5000) + "]}"
    decoded = decode(raw, Registry(EMITTER, []), date(2026, 12, 1))
    assert decoded.kind.value == "unusable"
    assert len(decoded.errors) == 51
    assert decoded.errors[0].field == "record_id"
    assert "4951 more finding(s)" in decoded.errors[-1].message
    source = tmp_path / "surrogates.jsonl"
    source.write_text(raw + "\n" + json.dumps(recent("S-1")) + "\n")
    assert "2 events read (created 1, unusable 1)" in run(config, "ingest", str(source)).stdout
    (kept,) = json.loads(run(config, "unusable", "--format", "json").stdout)
    assert len(kept["errors"]) == 51


def test_a_key_a_sender_chose_cannot_forge_a_line_nor_colour_a_terminal(config: Path) -> None:
    """An unknown key is named in the event's errors, which `ingest` and `show` print: its
    control characters and line breaks are written as escapes, and a long one is cut."""
    forged = "\x1b[31mRED\x1b[0m\nfirst problems: FORGED"
    event = recent("K-1")
    event[forged] = 1
    event["k" * 5000] = 1
    source = config.parent / "forged.jsonl"
    source.write_text(json.dumps(event) + "\n")
    printed = run(config, "ingest", str(source)).stdout + run(config, "show", "K-1").stdout
    assert "\x1b" not in printed
    assert "\nfirst problems: FORGED" not in printed
    assert "\\x1b[31mRED\\x1b[0m\\nfirst problems: FORGED" in printed
    (row,) = json.loads(run(config, "records", "--format", "json").stdout)
    fields = [problem["field"] for problem in row["errors"]]
    assert "\\x1b[31mRED\\x1b[0m\\nfirst problems: FORGED" in fields
    assert max(len(field) for field in fields) <= 201


def test_a_file_name_cannot_forge_a_line_nor_colour_a_terminal(config: Path) -> None:
    """Files a platform drops are ingested by their names (`ingest --certifier pix drop/*`):
    a name holding a line break and an escape sequence was printed as it is, in the summary's
    first line and before each of its problems, and by `check`."""
    forged = "x\x1b[31m\n3 events read (created 3).jsonl"
    source = config.parent / forged
    source.write_text(json.dumps(recent("FN-1", obtention="PAR_HASARD")) + "\n")
    missing = str(config.parent / "gone\nerror: forged.jsonl")
    printed = run(config, "ingest", str(source), missing, code=1).output
    printed += run(config, "check", str(source), missing, code=1).output
    assert "\x1b" not in printed and "\n3 events read" not in printed, printed
    assert "x\\x1b[31m\\n3 events read (created 3).jsonl:1 FN-1 obtention" in printed, printed
    assert "gone\\nerror: forged.jsonl" in printed, printed


@pytest.mark.parametrize("twice", [False, True], ids=["unknown", "given twice"])
def test_keys_of_a_birth_date_object_are_named_escaped_and_few(config: Path, twice: bool) -> None:
    """A partial birth date's message named every key it did not take, as sent: a key with a
    line break forged a line in `ingest`'s summary, and 10,000 keys of 1,000 characters made
    one message of 10 MB, stored with the record past its content's 16 KiB cap."""
    forged = "\x1b[31mRED\x1b[0m\nfirst problems: FORGED"
    keys = [forged, *(f"k{n:05d}" + "x" * 1000 for n in range(6_000))]
    if twice:
        members = ", ".join(f"{json.dumps(key)}: 1, {json.dumps(key)}: 2" for key in keys)
    else:
        members = ", ".join(f"{json.dumps(key)}: 1" for key in keys)
    text = json.dumps(recent("K-2"))
    line = text.replace('"1993-05-23"', '{"year": 1993, ' + members + "}")
    assert line != text
    source = config.parent / "birth.jsonl"
    source.write_text(line + "\n")
    printed = run(config, "ingest", str(source)).stdout + run(config, "show", "K-2").stdout
    assert "\nfirst problems: FORGED" not in printed
    assert "\\x1b[31mRED\\x1b[0m\\nfirst problems: FORGED" in printed, printed[:2000]
    (row,) = json.loads(run(config, "records", "--format", "json").stdout)
    (message,) = [p["message"] for p in row["errors"] if p["field"] == "holder.birth_date"]
    assert "(and 5996 more)" in message, message[:300]
    assert len(message) < 1500


def test_an_event_that_names_no_certifier_leaves_the_record_with_its_own(
    config: Path, tmp_path: Path
) -> None:
    """An event with no certifier (nor a code that tells it) is an invalid correction of the
    record it names; it used to make the record's certifier null, out of its certifier's
    listings, and open to another certifier's event."""
    run(config, "ingest", str(write_jsonl(tmp_path / "a.jsonl", [recent("P-1")])))
    nameless = {
        "record_id": "P-1",
        "event_id": "z",
        "certification": {"type": "RS", "code": "RS99999"},
    }
    out = run(config, "ingest", str(write_jsonl(tmp_path / "b.jsonl", [nameless]))).stdout
    assert "updated 1" in out, out
    (row,) = json.loads(run(config, "records", "--format", "json").stdout)
    assert (row["certifier"], row["status"]) == ("pix", "invalid")
    assert [r["record_id"] for r in outstanding_json(config, "--certifier", "pix")] == ["P-1"]

    school = recent("P-1", certifier="school", certification={"type": "RNCP", "code": "RNCP35726"})
    out = run(config, "ingest", str(write_jsonl(tmp_path / "c.jsonl", [school]))).stdout
    assert "already a record of certifier 'pix'" in out, out
    (row,) = json.loads(run(config, "records", "--format", "json").stdout)
    assert (row["certifier"], row["status"]) == ("pix", "invalid")


def test_a_certifier_a_sender_chose_is_printed_escaped(config: Path, tmp_path: Path) -> None:
    """An unscoped sender may write any text as `certifier` (an invalid record keeps it):
    the tables and `show` print it escaped, never a line break or a terminal's escape."""
    event = recent("X-1")
    event["certifier"] = "\x1b[31mEVIL\x1b[0m\nforged"
    run(config, "ingest", str(write_jsonl(tmp_path / "e.jsonl", [event])))
    for args in (("outstanding",), ("records",), ("show", "X-1")):
        printed = run(config, *args).stdout
        assert "\x1b" not in printed and "\nforged" not in printed, args
        assert "\\x1b[31mEVIL\\x1b[0m\\nforged" in printed, args
    (row,) = json.loads(run(config, "records", "--format", "json").stdout)
    assert row["certifier"] == "\x1b[31mEVIL\x1b[0m\nforged", "the data stays as it came"


def test_a_line_beginning_with_nul_bytes_is_read_as_utf8(config: Path, tmp_path: Path) -> None:
    """JSON's encoding detection reads bytes beginning with a NUL as UTF-16 or UTF-32: such a
    line of a UTF-8 file was said to be "not valid text (utf-16-be ...)" and kept garbled. It
    is UTF-8 like its neighbours: not JSON, kept as it came, the lines after it stored."""
    line = json.dumps(recent("NUL-1")).encode()
    odd = b"\x00" + line
    even = b"\x00\x00" + line + (b"" if len(line) % 2 else b" ")
    source = tmp_path / "nul.jsonl"
    source.write_bytes(b"\n".join([odd, even, json.dumps(recent("NUL-2")).encode()]) + b"\n")
    out = run(config, "ingest", str(source)).stdout
    assert "3 events read (created 1, unusable 2)" in out, out
    assert "utf-16" not in out.lower() and "utf-32" not in out.lower(), out
    kept = json.loads(run(config, "unusable", "--format", "json").stdout)
    assert sorted(row["raw"] for row in kept) == sorted([odd.decode(), even.decode()])
    for row in kept:
        (error,) = row["errors"]
        assert "is not valid JSON" in error["message"], error
