"""The outstanding query over a large state: one certifier, due within 30 days, 1,000 rows.

    python -m bench.query [--rows N] [--runs 50] [--quick] [--json] [--rebuild]
                          [--no-cli | --cli-only]

The database is created by `accrochage.state.sqlite.SqliteStore` (the real schema and indexes),
then filled directly with sqlite3 executemany: N records (default 1,000,000) spread over 10
certifiers (a few large, many small), statuses of a steady state (most accepted), deadlines
over 120 days around the day of the query; no content rows (the query does not read them).
It is cached under the temporary folder, keyed by row count, and reused by later runs.
`queries.outstanding(...)` is then timed in-process on a reader connection, against a bare
`SELECT count(*) FROM records` in the same run. Target: median and p95 <= 200 ms.
Pages of 100 records by status (`bench/query_pages.py`) too, each against SQLite's own
choice of index in the same run; target 200 ms.

Also (unless --no-cli; alone with --cli-only): `accrochage outstanding --format json` over the
same state as a subprocess, one certifier's overdue records and every outstanding record,
its answer written to a file and its rows counted: wall and CPU seconds, and the peak RSS
of the command (wait4 through the launcher). Target (issue 13): <= 100 MiB at 5,000,000
records (`--rows 5000000 --cli-only`; the database build takes minutes, then is cached).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from accrochage.models.deadline import deadline_for
from accrochage.models.record import Status, is_outstanding
from accrochage.models.vocabulary import RecordOrder
from accrochage.state import queries
from accrochage.state.sqlite import SqliteStore
from accrochage.state.sqlite.migrations import latest_migration
from accrochage.state.sqlite.reader import outstanding
from accrochage.state.sqlite.store import connect
from bench._common import (
    BenchError,
    Report,
    accrochage_command,
    at_most,
    base_parser,
    clean_env,
    cpu_seconds,
    finish,
    info,
    launch,
    median,
    percentile,
    write_config,
)
from bench.query_pages import status_pages

TARGET_MS = 200.0
FORMAT = "v1"  # bump when the generated rows change, so that old caches are not reused
AS_OF = date(2026, 12, 1)
# (key, weight, codes): a few large certifiers and a long tail, as on the real market.
CERTIFIERS = (
    ("pix", 30, ("RS5875",)),
    ("demo-school", 18, ("RNCP35726", "RNCP37873")),
    ("campus-num", 12, ("RS6200", "RNCP38000")),
    ("langues-plus", 9, ("RS5001", "RS5002")),
    ("ecole-sante", 8, ("RNCP34001",)),
    ("btp-academie", 7, ("RNCP36010", "RNCP36011")),
    ("compta-pro", 6, ("RS6100",)),
    ("digital-up", 4, ("RS6300", "RS6301")),
    ("logistique-fr", 3, ("RNCP35500",)),
    ("art-metiers", 3, ("RNCP37000",)),
)
STATUSES = (
    (Status.ACCEPTED, 55),
    (Status.DEPOSITED, 12),
    (Status.PENDING, 12),
    (Status.BATCHED, 8),
    (Status.INVALID, 6),
    (Status.REJECTED, 4),
    (Status.WITHDRAWN, 3),
)
ERRORS = json.dumps(
    [{"field": "holder", "message": "holder (or cpf_file, its CPF alternative) is required"}]
)
WARNINGS = json.dumps([{"field": "exam.end", "message": "2026-11-20 is after delivered_on"}])


def cache_path(rows: int) -> Path:
    """Named after the schema too: a state built by an older version would need migrating,
    which the read-only `outstanding` run on it refuses."""
    name = f"accrochage-bench-query-{FORMAT}-{latest_migration()}-{rows}.db"
    return Path(tempfile.gettempdir()) / name


def _record(index: int, rng: random.Random) -> dict[str, Any]:
    key, codes = rng.choices(_KEYS, weights=_WEIGHTS)[0]
    status = rng.choices(_STATUS_NAMES, weights=_STATUS_WEIGHTS)[0]
    delivered: date | None = AS_OF - timedelta(days=rng.randrange(120))
    if status is Status.INVALID and rng.random() < 0.1:
        delivered = None  # an unreadable delivery date: no deadline
    deadline = deadline_for(delivered) if delivered else None
    correction = rng.random() < 0.01 and status in (Status.ACCEPTED, Status.DEPOSITED)
    revocation = rng.random() < 0.005 and status is Status.ACCEPTED
    record_id = f"{key.upper()}-{index:08d}"
    received = datetime(2026, 8, 1, 9) + timedelta(seconds=index * 7)
    stamp = received.isoformat()
    batch = (
        f"batch-{key}-{index // 1000:06d}"
        if status in (Status.BATCHED, Status.DEPOSITED, Status.ACCEPTED, Status.REJECTED)
        else None
    )
    values = {
        "record_id": record_id,
        "certifier": key,
        "code": rng.choice(codes),
        "status": status.value,
        "outstanding": int(is_outstanding(status, correction, revocation)),
        "version": 2 if correction else 1,
        "content_hash": hashlib.sha256(record_id.encode()).hexdigest(),
        "delivered_on": delivered.isoformat() if delivered else None,
        "deadline": deadline.isoformat() if deadline else None,
        "errors": ERRORS if status is Status.INVALID else "[]",
        "warnings": WARNINGS if rng.random() < 0.02 else "[]",
        "xml_bytes": None if status is Status.INVALID else rng.randrange(900, 2200),
        "batch_id": batch,
        "pending_since": stamp if status is Status.PENDING else None,
        "correction_version": 2 if correction else None,
        "revocation_pending": int(revocation),
        "cdc_message": "idTechnique déjà connu" if status is Status.REJECTED else None,
        "cdc_reason": "identity_not_found" if status is Status.REJECTED else None,
        "excluded_from": None,
        "accepted_batch_id": batch if status is Status.ACCEPTED else None,
        "created_at": stamp,
        "updated_at": stamp,
    }
    return values


_KEYS = [(key, codes) for key, _, codes in CERTIFIERS]
_WEIGHTS = [weight for _, weight, _ in CERTIFIERS]
_STATUS_NAMES = [status for status, _ in STATUSES]
_STATUS_WEIGHTS = [weight for _, weight in STATUSES]


def _rows(count: int, seed: int = 11) -> Iterator[list[dict[str, Any]]]:
    rng = random.Random(seed)
    chunk: list[dict[str, Any]] = []
    for index in range(count):
        chunk.append(_record(index, rng))
        if len(chunk) == 50_000:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def build(rows: int, rebuild: bool = False) -> tuple[Path, float | None]:
    """The cached database of `rows` records: (path, seconds spent building it or None)."""
    final = cache_path(rows)
    if final.is_file() and not rebuild:
        return final, None
    start = time.perf_counter()
    partial = final.with_name(f"{final.name}.{os.getpid()}.partial")
    SqliteStore(partial).close()  # the real schema, through the real migrations
    conn = sqlite3.connect(partial, isolation_level=None)
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -262144")
    conn.execute("BEGIN")
    for chunk in _rows(rows):
        columns = list(chunk[0])  # the columns a record fills; the others take their default
        insert = (
            f"INSERT INTO records ({', '.join(columns)}) "
            f"VALUES ({', '.join(':' + c for c in columns)})"
        )
        conn.executemany(insert, chunk)
    conn.execute("COMMIT")
    conn.execute("PRAGMA journal_mode = WAL")  # as the Store leaves it
    conn.close()
    os.replace(partial, final)
    return final, time.perf_counter() - start


CLI_QUERIES = (
    ("pix overdue", ("--certifier", "pix", "--overdue")),
    ("all outstanding", ()),
)
"""`accrochage outstanding --format json --as-of AS_OF` with these filters: one certifier's
overdue records (~3 % of the state), and every outstanding record (~43 %)."""
TARGET_CLI_RSS_MB = 100.0
"""Peak RSS of `outstanding --format json` at 5,000,000 records (issue 13)."""


@dataclass
class CliRun:
    name: str
    argv: list[str]
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    rows: int
    output_mb: float


def run_cli_outstanding(state: Path, name: str, filters: Sequence[str]) -> CliRun:
    """The CLI command over the cached state, its answer to a file (rows counted there): wall
    and CPU seconds, peak RSS of its process (wait4, through the launcher)."""
    with tempfile.TemporaryDirectory(prefix="accrochage-bench-query-cli-") as scratch:
        folder = Path(scratch)
        config = write_config(folder)
        text = config.read_text(encoding="utf-8")
        text = text.replace(f'state = "{folder / "state.db"}"', f'state = "{state}"')
        config.write_text(text, encoding="utf-8")
        argv = [
            *accrochage_command(),
            "--config",
            str(config),
            "outstanding",
            "--format",
            "json",
            "--as-of",
            AS_OF.isoformat(),
            *filters,
        ]
        output = folder / "answer.json"
        with output.open("wb") as out, tempfile.TemporaryFile() as err:
            done = launch(argv, cwd=folder, env=clean_env(), stdout=out, stderr=err).outcome()
            err.seek(0)
            stderr = err.read().decode("utf-8", "replace")
        if done["returncode"] != 0:
            raise BenchError(f"outstanding failed ({done['returncode']}):\n{stderr[-3000:]}")
        rows, tail = 0, b""
        with output.open("rb") as handle:
            while block := handle.read(1 << 20):
                data = tail + block
                rows += data.count(b"\n {")
                tail = data[-2:]
        return CliRun(
            name,
            argv[len(accrochage_command()) + 2 :],
            done["seconds"],
            done["tree_cpu_seconds"],
            done["peak_rss_mb"],
            rows,
            output.stat().st_size / 1e6,
        )


def timed(
    runs: int, work: Callable[[], Any], cpu: list[float] | None = None
) -> tuple[list[float], Any]:
    """Wall milliseconds of each run (and CPU milliseconds into `cpu`), the last result."""
    times, result = [], None
    for _ in range(runs):
        start, used = time.perf_counter(), cpu_seconds()
        result = work()
        times.append((time.perf_counter() - start) * 1000)
        if cpu is not None:
            cpu.append((cpu_seconds() - used) * 1000)
    return times, result


def plan(conn: sqlite3.Connection, sql: str) -> list[str]:
    return [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]


def report_cli(report: Report, runs: list[CliRun], rows: int, built: float | None) -> None:
    for run in runs:
        report.add(
            at_most(
                f"outstanding --format json ({run.name}): peak RSS",
                run.peak_rss_mb,
                "MiB",
                TARGET_CLI_RSS_MB,
                f"{run.rows:,} rows, {run.output_mb:.0f} MB of JSON in {run.seconds:.1f} s, CPU "
                f"{run.cpu_seconds:.1f} s; {' '.join(run.argv)}"
                + (
                    ""
                    if rows == 5_000_000
                    else f" (target set at 5,000,000 records, here {rows:,})"
                ),
            )
        )
    if built is not None:
        report.add(info("database build (cached for later runs)", built, "s"))


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--rows", type=int, help="records (default 1,000,000)")
    parser.add_argument("--runs", type=int, default=50, help="timed runs of each query")
    parser.add_argument("--rebuild", action="store_true", help="ignore the cached database")
    parser.add_argument(
        "--no-cli",
        action="store_true",
        help="skip `accrochage outstanding --format json` (peak RSS of the command)",
    )
    parser.add_argument(
        "--cli-only",
        action="store_true",
        help="only `accrochage outstanding --format json` (for large --rows)",
    )
    args = parser.parse_args()
    rows = args.rows or (20_000 if args.quick else 1_000_000)
    runs = 10 if args.quick else args.runs
    path, built = build(rows, args.rebuild)
    cli_runs = [] if args.no_cli else [run_cli_outstanding(path, n, f) for n, f in CLI_QUERIES]
    if args.cli_only:
        report = Report("query", args.quick, {"records": rows, "cache": str(path)})
        report_cli(report, cli_runs, rows, built)
        report.details = {"cli": [vars(run) for run in cli_runs]}
        return finish(report, args.json)
    certifier = CERTIFIERS[0][0]
    query = queries.OutstandingQuery(as_of=AS_OF, certifier=certifier, due_within=30, limit=1000)

    # The Store opens the file as the service does (and applies any newer migration).
    store = SqliteStore(path)
    reader = connect(path, readonly=True)
    statements: list[str] = []
    reader.set_trace_callback(statements.append)
    first_ms, _ = timed(1, lambda: outstanding(reader, query))
    reader.set_trace_callback(None)
    query_cpu: list[float] = []
    query_ms, found = timed(runs, lambda: outstanding(reader, query), query_cpu)
    # Where the time goes: the statement alone, and without its `deadline IS NULL` term.
    selects = [statement for statement in statements if statement.startswith("SELECT")]
    sql = selects[-1] if selects else ""
    index_order = sql.replace("ORDER BY deadline IS NULL, deadline", "ORDER BY deadline")
    sql_ms, _ = timed(runs, lambda: reader.execute(sql).fetchall())
    index_ms, _ = timed(runs, lambda: reader.execute(index_order).fetchall())
    count_sql = "SELECT count(*) FROM records"
    count_ms, counted = timed(runs, lambda: reader.execute(count_sql).fetchone())
    matching = reader.execute(
        "SELECT count(*) FROM records WHERE outstanding = 1 AND certifier = ? AND deadline <= ?",
        (certifier, (AS_OF + timedelta(days=30)).isoformat()),
    ).fetchone()[0]
    # A platform's synchronisation walks by record id: a page from the middle of its walk.
    (middle,) = reader.execute(
        "SELECT record_id FROM records WHERE outstanding = 1 AND certifier = ? "
        "ORDER BY record_id LIMIT 1 OFFSET (SELECT count(*) / 2 FROM records "
        "WHERE outstanding = 1 AND certifier = ?)",
        (certifier, certifier),
    ).fetchone()
    walk = queries.OutstandingQuery(
        as_of=AS_OF,
        certifier=certifier,
        limit=1000,
        order=RecordOrder.RECORD_ID,
        cursor=queries.records_cursor({"record_id": middle}, RecordOrder.RECORD_ID),
    )
    walk_ms, walked = timed(runs, lambda: outstanding(reader, walk))
    query_plan = plan(reader, sql) if sql else []
    index_plan = plan(reader, index_order) if sql else []
    pages, pages_ms = status_pages(reader, AS_OF, max(5, runs // 5), timed, TARGET_MS)
    reader.close()
    store.close()

    report = Report(
        "query",
        args.quick,
        {
            "records": rows,
            "runs": runs,
            "certifier": f"{certifier} (the largest, ~30%)",
            "cache": str(path),
        },
    )
    report.add(
        at_most(
            "outstanding(): median",
            median(query_ms),
            "ms",
            TARGET_MS,
            f"CPU median {median(query_cpu):.1f} ms",
        )
    )
    report.add(
        at_most(
            "outstanding(): p95",
            percentile(query_ms, 95),
            "ms",
            TARGET_MS,
            f"first (cold) run {first_ms[0]:.1f} ms; {len(found)} rows returned "
            f"of {matching:,} matching",
        )
    )
    report.add(
        at_most(
            "a page by record id (a platform's walk): median",
            median(walk_ms),
            "ms",
            TARGET_MS,
            f"p95 {percentile(walk_ms, 95):.1f} ms; {len(walked)} rows from the middle of "
            f"{certifier}'s outstanding records",
        )
    )
    report.add(
        info(
            "baseline SELECT count(*): median",
            median(count_ms),
            "ms",
            f"p95 {percentile(count_ms, 95):.1f} ms; {counted[0]:,} records",
        )
    )
    report.add(info("ratio outstanding / count(*)", median(query_ms) / median(count_ms), "x"))
    report.add(
        info(
            "  its SQL alone (fetchall): median",
            median(sql_ms),
            "ms",
            "plan: " + "; ".join(query_plan),
        )
    )
    report.add(
        info(
            "  same SQL, ORDER BY deadline, record_id",
            median(index_ms),
            "ms",
            "plan: " + "; ".join(index_plan),
        )
    )
    for metric in pages:
        report.add(metric)
    report_cli(report, cli_runs, rows, built)
    report.details = {
        "cli": [vars(run) for run in cli_runs],
        "status_pages_ms": pages_ms,
        "query_ms": query_ms,
        "count_ms": count_ms,
        "sql": sql,
        "plan": query_plan,
        "sql_alone_ms": sql_ms,
        "index_order_sql": index_order,
        "index_order_plan": index_plan,
        "index_order_ms": index_ms,
        "record_id_page_ms": walk_ms,
    }
    finish(report, args.json)
    if len(found) != min(1000, matching):
        raise SystemExit(
            f"outstanding() returned {len(found)} rows, expected {min(1000, matching)}"
        )


if __name__ == "__main__":
    main()
