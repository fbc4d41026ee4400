"""The SUPPRESSION cut of a mass revocation: how long it holds the write lock.

    python -m bench.withdrawals [--events N] [--quick] [--json]

N generated events of one certifier (default 100,000; 2,000 with --quick) are stored by
`accrochage ingest`, cut into one CREATION file of N passages and written, accepted by a CDC
processing report naming every passage (`Feedback.import_report`), then revoked, one
`certification.revoked` event each (`accrochage ingest`): N records to withdraw, in schema
1.1.5. The state is copied (SQLite's backup), and each copy cut in-process, every record
forced (`Flusher.cut`), with every write transaction timed from its start to its commit and a
probe (another store on the state, as a service's writer) writing a row every 5 ms: once with
the SUPPRESSION file (`max_records` = N) cut in parts of `CUT_PER_TRANSACTION`, once with it
in one transaction, the baseline of the probe's longest write. Before session 51 the plan
(every record to withdraw read, the file split) was read and the file cut in one write
transaction: longer than this baseline. No target: issue 13 asks that "the batch cut never
holds the writer back for long"; this says how long.
"""

from __future__ import annotations

import json
import statistics
import uuid
from pathlib import Path

from accrochage.app import build_core
from accrochage.settings import load_settings
from accrochage.streams import cut_group
from accrochage.streams.flush_report import FlushReport
from bench._common import (
    BenchError,
    Report,
    accrochage_command,
    base_parser,
    clean_env,
    finish,
    info,
    run_measured,
    scratch_dir,
    write_config,
)
from bench.cut import Cut, copied, measured, stored_state

SCHEMA = "1.1.5"
"""The first schema with SUPPRESSION files."""


def accepted_report(path: Path, file_name: str, batch_id: str, record_ids: list[str]) -> None:
    """A CDC processing report accepting every passage of one file (SPEC §9.1)."""
    with path.open("w", encoding="utf-8") as out:
        out.write(
            '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
            '<rapport xmlns:ns2="urn:cdc:cpf:pc5:rapport:schema">\n'
            f"    <nomFichier>{file_name}</nomFichier>\n    <idFlux>{batch_id}</idFlux>\n"
            "    <idTraitement>67598</idTraitement>\n    <PassagesKO>\n    </PassagesKO>\n"
            "    <PassagesOK>\n"
        )
        for record_id in record_ids:
            out.write(f"        <idTechnique>{record_id}</idTechnique>\n")
        out.write("    </PassagesOK>\n</rapport>\n")


def revoked_state(folder: Path, count: int) -> Path:
    """A state of `count` records of one certifier, accepted by the CDC, then revoked."""
    state, _ = stored_state(folder, count)
    config = write_config(state.parent, max_records=count, schema=SCHEMA)
    core = build_core(load_settings(config))
    try:
        flushed = core.flusher.flush(force=True)
        if not flushed.ok or len(flushed.written) != 1:
            raise BenchError(f"expected one CREATION file: {flushed}")
        (written,) = flushed.written
        events = [
            json.loads(line)
            for line in (folder / "events.jsonl").read_text(encoding="utf-8").splitlines()
        ]
        report = folder / "report.xml"
        accepted_report(
            report, written.path.name, written.batch_id, [e["record_id"] for e in events]
        )
        summary = core.feedback.import_report(report)
        if len(summary.accepted) != count:
            raise BenchError(f"expected {count} passages accepted: {len(summary.accepted)}")
    finally:
        core.close()
    revocations = folder / "revocations.jsonl"
    with revocations.open("w", encoding="utf-8") as out:
        for event in events:
            revocation = {
                "type": "certification.revoked",
                "event_id": str(uuid.uuid4()),
                "record_id": event["record_id"],
                "certifier": event["certifier"],
                "certification": event["certification"],
                "reason": "bench: a mass revocation",
            }
            out.write(json.dumps(revocation) + "\n")
    command = [*accrochage_command(), "--config", str(config), "ingest", str(revocations)]
    done = run_measured(command, cwd=folder, env=clean_env())
    if done.returncode != 0:
        raise BenchError(f"ingest of the revocations failed:\n{done.stderr[-3000:]}")
    return state


def product_withdrawal(state: Path, count: int, per_transaction: int | None = None) -> Cut:
    """`state`'s records to withdraw cut into one SUPPRESSION file, with a `WriterProbe`;
    `per_transaction`: members a transaction instead of `CUT_PER_TRANSACTION`."""
    config = write_config(state.parent, max_records=count, schema=SCHEMA)
    core = build_core(load_settings(config))
    part = cut_group.CUT_PER_TRANSACTION
    cut_group.CUT_PER_TRANSACTION = per_transaction or part
    report = FlushReport()
    try:
        with measured(core, state, True) as (held, waits):
            core.flusher.cut(report, force=True)
    finally:
        cut_group.CUT_PER_TRANSACTION = part
        core.close()
    if [c.passages for c in report.cut] != [count]:
        raise BenchError(f"expected one SUPPRESSION of {count}: {report.cut}")
    return Cut(held, len(report.cut), waits)


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--events", type=int, help="records to withdraw (default 100,000)")
    args = parser.parse_args()
    count = args.events or (2_000 if args.quick else 100_000)
    report = Report("withdrawals", args.quick, {"events": count, "certifiers": 1})
    with scratch_dir("withdrawals") as folder:
        state = revoked_state(folder, count)
        parts = product_withdrawal(copied(state, folder / "parts"), count)
        whole = product_withdrawal(copied(state, folder / "whole"), count, count)
    longest, together = max(parts.held), sum(parts.held)
    report.add(
        info(
            "longest write transaction, one SUPPRESSION file",
            longest * 1000,
            "ms",
            f"{count:,} records revoked, max_records = {count:,}, cut in parts of "
            f"{cut_group.CUT_PER_TRANSACTION:,}: {len(parts.held)} write transactions, together "
            f"{together * 1000:.0f} ms ({together / count * 1e6:.1f} µs a member)",
        )
    )
    report.add(
        info(
            "  a writer's longest write meanwhile",
            max(parts.waits) * 1000,
            "ms",
            f"another store writing a row every 5 ms: {len(parts.waits)} writes, median "
            f"{statistics.median(parts.waits) * 1000:.1f} ms",
        )
    )
    report.add(
        info(
            "  baseline: the same cut in one transaction",
            max(whole.held) * 1000,
            "ms",
            f"the writer's longest write meanwhile {max(whole.waits) * 1000:.0f} ms "
            f"({len(whole.waits)} writes)",
        )
    )
    report.add(
        info(
            "ratio: a writer's longest wait, in parts / one transaction",
            max(parts.waits) / max(whole.waits),
            "x",
        )
    )
    report.details = {
        "held_parts": parts.held,
        "held_whole": whole.held,
        "probe_parts": parts.waits,
        "probe_whole": whole.waits,
    }
    finish(report, args.json)


if __name__ == "__main__":
    main()
