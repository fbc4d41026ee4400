"""A CSV file costs only its own bad rows: no crash, no row dropped or misread without a word.

Each case here once crashed `ingest` with a traceback (the rows of its group never stored, the
rows after it never read) or dropped data silently; the review that found them reproduced
each from the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from accrochage.streams import csv_events
from accrochage.streams.csv_events import MAX_LINE_BYTES
from tests.test_cli_tracker import RECENT, outstanding_json, problem_line, run
from tests.test_tracker import write_config

HEADER = (
    "record_id;event_id;certifier;certification.type;certification.code;delivered_on;"
    "obtention;holder.birth_name;holder.first_names;holder.birth_date;holder.sex"
)
BIRTH_NAME = "Haba"


def row(record_id: str, *, birth_name: str = BIRTH_NAME, birth_date: str = "1993-05-23") -> str:
    return (
        f"{record_id};e-{record_id};pix;RS;RS5875;{RECENT};PAR_ADMISSION;{birth_name};Bart;"
        f"{birth_date};M"
    )


@pytest.fixture()
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path)


def write_csv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def ingested(config: Path, source: Path, code: int | None = None) -> str:
    out = run(config, "ingest", str(source), code=code)
    assert "Traceback" not in out.stderr + out.stdout, out.stderr
    return out.stdout


def records(config: Path) -> dict[str, dict[str, object]]:
    shown = run(config, "records", "--format", "json").stdout
    return {r["record_id"]: r for r in json.loads(shown)}


def test_a_header_naming_a_field_and_one_of_its_parts_refuses_the_file(
    config: Path, tmp_path: Path
) -> None:
    """`holder.birth_place` with a value, then `holder.birth_place.insee_code`: the second
    could not be set under a text (a TypeError, the file's rows lost)."""
    header = HEADER + ";holder.birth_place;holder.birth_place.insee_code"
    source = write_csv(tmp_path / "e.csv", [header, row("C-1") + ";Lyon;69123"])
    out = run(config, "ingest", str(source), code=1)
    assert "Traceback" not in out.stderr + out.stdout
    assert "line 1, the CSV header" in out.stderr + out.stdout
    said = out.stderr + out.stdout
    assert "holder.birth_place (column 12) holds a value where" in said, said
    assert "holder.birth_place.insee_code (column 13) holds a part of it" in said
    assert records(config) == {}


def test_a_header_naming_a_field_twice_refuses_the_file(config: Path, tmp_path: Path) -> None:
    """The csv module kept the last of two `holder.birth_name` cells, the first one lost."""
    source = write_csv(tmp_path / "e.csv", [HEADER + ";holder.birth_name", row("D-1") + ";Other"])
    out = run(config, "ingest", str(source), code=1)
    said = out.stderr + out.stdout
    assert "holder.birth_name (column 12) has the name of column 8" in said, said
    assert records(config) == {}


def test_cells_beyond_the_header_or_under_an_unnamed_column_fail_their_row(
    config: Path, tmp_path: Path
) -> None:
    source = write_csv(
        tmp_path / "e.csv",
        [HEADER + ";", row("X-1") + ";;lost;values", row("X-2") + ";kept?", row("X-3") + ";"],
    )
    out = ingested(config, source)
    assert "3 events read" in out, out
    extra = problem_line(out, source, 2, "X-1", "event")
    assert extra.startswith("2 cell(s) without a column in the header"), extra
    assert "1 cell(s) without a column" in problem_line(out, source, 3, "X-2", "event")
    stored = records(config)
    assert {k: v["status"] for k, v in stored.items()} == {
        "X-1": "invalid",
        "X-2": "invalid",
        "X-3": "pending",
    }


def test_a_stray_double_quote_is_named_and_the_rows_it_swallowed_are_said(
    config: Path, tmp_path: Path
) -> None:
    """A birth name of `"Haba` read every line after it into that one cell: ingest said
    `3 events read`, exit 0, the rows there gone without a word."""
    lines = [HEADER, row("Q-1"), row("Q-2"), row("Q-3", birth_name='"Haba')]
    lines += [row(f"Q-{n}") for n in range(4, 9)]
    source = write_csv(tmp_path / "e.csv", lines)
    out = ingested(config, source)
    message = problem_line(out, source, 4, "Q-3", "holder.birth_name")
    assert "a double quote opened in line 4 closes only in line 9" in message, message
    assert "lines 4-9 were read as this one row" in message
    assert BIRTH_NAME not in message  # the rows' content is not quoted back
    assert records(config)["Q-3"]["status"] == "invalid"
    assert {r["record_id"] for r in outstanding_json(config)} == {"Q-1", "Q-2", "Q-3"}


def test_a_quoted_cell_on_one_line_is_read_as_usual(config: Path, tmp_path: Path) -> None:
    source = write_csv(tmp_path / "e.csv", [HEADER, row("R-1", birth_name='"Haba; de la"')])
    out = ingested(config, source, code=0)
    assert "accepted: 1" in out, out


def test_a_cell_over_the_csv_module_limit_fails_its_own_row(config: Path, tmp_path: Path) -> None:
    """A 200 KiB cell raised `field larger than field limit` (131,072): a traceback, the rows
    before it in the same group not stored."""
    lines = [HEADER, row("M-1"), row("M-2", birth_name="x" * 200_000), row("M-3")]
    source = write_csv(tmp_path / "e.csv", lines)
    out = ingested(config, source)
    assert "3 events read" in out, out
    assert "at most 60" in problem_line(out, source, 3, "M-2", "holder.birth_name")
    statuses = {k: v["status"] for k, v in records(config).items()}
    assert statuses == {"M-1": "pending", "M-2": "invalid", "M-3": "pending"}


def test_a_row_the_csv_module_cannot_read_is_unusable_and_the_next_ones_are_read(
    config: Path, tmp_path: Path
) -> None:
    huge = "x" * (MAX_LINE_BYTES // 4)
    # A quoted cell growing past the csv module's limit, line after line.
    lines = [HEADER, row("U-1"), row("U-2", birth_name='"' + huge)]
    lines += [huge] * 4 + ['end"' + ";x", row("U-3")]
    source = write_csv(tmp_path / "e.csv", lines)
    out = ingested(config, source)
    assert "lines 3-8 could not be read as a CSV row (longer than 16 MiB)" in out
    assert {r["record_id"] for r in outstanding_json(config)} >= {"U-1", "U-3"}


def test_a_row_longer_than_the_limit_over_many_short_cells_is_unusable_and_memory_bounded(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every line and every cell under the limit, the row 176 MB: it was read whole (585 MB
    for `check`), its 14.7 MB `certifier` cell stored as the record's certifier. A row is
    bounded as a line is; here the limit lowered to 64 KiB, the row ten times that."""
    monkeypatch.setattr(csv_events, "MAX_LINE_BYTES", 64 * 1024)
    piece = "A" * 30_000
    cell = '"' + "\n".join([piece] * 4) + '"'
    lines = [HEADER, row("R-1"), f"R-2;e-R-2;{cell};{cell};{cell};{cell};{cell}", row("R-3")]
    source = write_csv(tmp_path / "e.csv", lines)
    out = ingested(config, source)
    assert "could not be read as a CSV row (longer than 0 MiB)" in out, out
    stored = records(config)
    assert {"R-1", "R-3"} <= set(stored) and "R-2" not in stored
    assert all(len(str(r.get("certifier") or "")) < 100 for r in stored.values())


def test_a_birth_year_with_a_digit_python_cannot_convert_fails_its_own_row(
    config: Path, tmp_path: Path
) -> None:
    """`"198²".isdigit()` is true and `int("198²")` raises: a traceback, B-1 not stored."""
    lines = [HEADER, row("B-1", birth_date="1993"), row("B-2", birth_date="198²"), row("B-3")]
    source = write_csv(tmp_path / "e.csv", lines)
    out = ingested(config, source)
    assert "3 events read" in out, out
    assert problem_line(out, source, 3, "B-2", "holder.birth_date")
    statuses = {k: v["status"] for k, v in records(config).items()}
    assert statuses == {"B-1": "pending", "B-2": "invalid", "B-3": "pending"}


def test_a_jsonl_line_too_long_to_read_says_so(config: Path, tmp_path: Path) -> None:
    """Its reason was the JSON parser's on a marker text: `Expecting value: line 1 column 1`."""
    source = tmp_path / "e.jsonl"
    with source.open("wb") as out:
        out.write(b'{"record_id": "L-1", "padding": "' + b"x" * (MAX_LINE_BYTES + 10) + b'"}\n')
    said = ingested(config, source)
    assert "line 1 is longer than 16 MiB: not read" in said, said
    assert "Expecting value" not in said


def test_check_reports_what_reading_found_as_ingest_does(config: Path, tmp_path: Path) -> None:
    source = write_csv(
        tmp_path / "e.csv", [HEADER, row("K-1", birth_name='"Haba'), row("K-2"), row("K-3")]
    )
    checked = run(config, "check", str(source), "--format", "json", code=None)
    assert "Traceback" not in checked.stderr
    [result] = json.loads(checked.stdout)
    assert result["record_id"] == "K-1" and not result["valid"]
    said = [e["message"] for e in result["errors"] if e["field"] == "holder.birth_name"]
    assert any("lines 2-4 were read as this one row" in message for message in said), said
    assert not (config.parent / "var" / "state.db").exists()  # nothing stored, nothing made


def test_an_excel_separator_line_before_the_header_is_followed(
    config: Path, tmp_path: Path
) -> None:
    """Excel may write `sep=;` before the header: it was read as the header, every row then
    unusable (`record_id is required`)."""
    lines = ["sep=,", HEADER.replace(";", ","), row("S-1").replace(";", ",")]
    lines.append(row("S-2", birth_date="someday").replace(";", ","))
    source = write_csv(tmp_path / "e.csv", lines)
    out = ingested(config, source)
    assert "accepted: 1" in out, out
    assert problem_line(out, source, 4, "S-2", "holder.birth_date")  # lines as in the file
    assert records(config)["S-1"]["status"] == "pending"


def test_a_row_with_cells_without_a_column_stays_invalid_when_sent_again(
    config: Path, tmp_path: Path
) -> None:
    """The problem lived beside the content: the same row sent again after a valid one was
    `unchanged`, and `revalidate` turned the invalid record pending."""
    write_csv(tmp_path / "a.csv", [HEADER, row("Y-1")])
    ingested(config, tmp_path / "a.csv", code=0)
    stray = write_csv(tmp_path / "b.csv", [HEADER, row("Y-1") + ";STRAY"])
    out = ingested(config, stray)
    assert "updated 1" in out and "invalid:  1" in out, out
    assert records(config)["Y-1"]["status"] == "invalid"
    run(config, "revalidate")
    assert records(config)["Y-1"]["status"] == "invalid"


def test_a_header_error_never_quotes_a_cell_that_is_no_field(config: Path, tmp_path: Path) -> None:
    """A file exported without its header: its first line, a holder's, is read as the header;
    `column DUPONT appears twice` quoted the holder's name on stderr."""
    first = row("P-1", birth_name="DUPONT").replace("Bart", "DUPONT")
    source = write_csv(tmp_path / "e.csv", [first, row("P-2")])
    out = run(config, "ingest", str(source), code=1)
    said = out.stderr + out.stdout
    assert "column 9 has the name of column 8" in said, said
    assert "DUPONT" not in said


def test_a_separator_line_then_a_header_that_does_not_decode_refuses_the_file(
    config: Path, tmp_path: Path
) -> None:
    """Only line 1 could refuse a file: after `sep=;` the header was skipped as unusable and
    the first row read as the header, nothing stored and nothing said of it."""
    source = tmp_path / "e.csv"
    source.write_bytes(
        b"sep=;\n"
        + HEADER.encode()
        + b";commentaire_\xe9\n"
        + row("H-1", birth_name="Lefèvre").encode()  # UTF-8: the file is guessed UTF-8
        + b";x\n"
    )
    out = run(config, "ingest", str(source), code=1)
    assert "line 2, the CSV header, is not utf-8 (byte 0xE9" in out.stderr, out.stderr


def test_a_csv_line_too_long_to_read_is_one_unusable_event(config: Path, tmp_path: Path) -> None:
    """Read in pieces, its tail became a row (a record of its own) and the lines after it
    were numbered one too far."""
    source = tmp_path / "e.csv"
    with source.open("w", encoding="utf-8") as out:
        out.write(HEADER + "\n" + row("V-1") + ";" + "x" * (MAX_LINE_BYTES + 10) + ";V-9\n")
        out.write(row("V-2", birth_date="someday") + "\n")
    said = ingested(config, source)
    assert "2 events read" in said and "line 2 is longer than 16 MiB: not read" in said, said
    assert set(records(config)) == {"V-2"}
    assert problem_line(said, source, 3, "V-2", "holder.birth_date")  # its line, not 4


def test_a_csv_header_too_long_to_read_refuses_the_file(config: Path, tmp_path: Path) -> None:
    """It was skipped as an unusable line and the first row read as the header: that row
    gone without a word, every later one unusable."""
    source = tmp_path / "e.csv"
    with source.open("w", encoding="utf-8") as out:
        out.write(HEADER + ";" + "x" * (MAX_LINE_BYTES + 10) + "\n" + row("W-1") + "\n")
    out = run(config, "ingest", str(source), code=1)
    assert "line 1, the CSV header, is longer than 16 MiB" in out.stderr, out.stderr
    assert records(config) == {}


def test_a_column_of_thousands_of_dots_refuses_its_file_and_the_next_is_read(
    config: Path, tmp_path: Path
) -> None:
    """Each part of a column's path was a level of its rows' events: `x.x.x...` of 5,000
    parts made an event too deep to store, a RecursionError ended `ingest` with a traceback
    (no row of the file stored, no later file read), and checking the header's parts took
    time in the square of their number."""
    deep = "x" + ".x" * 4999
    source = write_csv(tmp_path / "deep.csv", [HEADER + ";" + deep, row("X-1") + ";v"])
    after = write_csv(tmp_path / "after.csv", [HEADER, row("X-2")])
    out = run(config, "ingest", str(source), str(after), code=1)
    said = out.stderr + out.stdout
    assert "Traceback" not in said, said
    assert "line 1, the CSV header: column 12 names a path of 5000 parts" in said, said
    assert set(records(config)) == {"X-2"}
    checked = run(config, "check", str(source), code=1)
    assert "column 12 names a path of 5000 parts" in checked.stderr + checked.stdout


def test_a_column_a_few_parts_deeper_than_any_field_fails_its_rows_alone(
    config: Path, tmp_path: Path
) -> None:
    source = write_csv(
        tmp_path / "e.csv", [HEADER + ";holder.birth_place.city.x", row("Y-1") + ";v"]
    )
    said = ingested(config, source)
    assert "invalid:  1" in said, said
    assert records(config)["Y-1"]["status"] == "invalid"


def test_a_json_cell_nested_nearly_as_deep_as_parsing_goes_costs_only_its_row(
    config: Path, tmp_path: Path
) -> None:
    """A `digital_level.results` cell is parsed on its own, and nested two levels deeper in
    its event: a cell of about 980 levels parsed, then its event could not be written as
    JSON (its content, then its raw text for the unusable log), and the RecursionError ended
    `ingest` with a traceback, the rows of its group never stored."""
    header = HEADER + ";digital_level.results"
    deep = [row(f"J-{depth}") + ";" + "[" * depth + "]" * depth for depth in range(900, 1000, 4)]
    source = write_csv(tmp_path / "e.csv", [header, row("J-1") + ";", *deep, row("J-2") + ";"])
    said = ingested(config, source)
    assert "27 events read" in said, said
    stored = records(config)
    assert stored["J-1"]["status"] == stored["J-2"]["status"] == "pending"
