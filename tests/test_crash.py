"""kill -9 while ingesting and while flushing: no valid record lost, none released twice.

DESIGN.md, "No loss, no duplicate": after a crash at any instant, every valid event ends up in
exactly one released file and every invalid one in the rejected records. The slow test kills
the real CLI with SIGKILL at random points and restarts it, and checks after every run that
what the outbox shows is complete and that the killed command left no process behind. The fast
ones build by hand what timing cannot hit reliably: the crash between "file renamed into the
outbox" and "batch marked written", a render killed half-way, and a render worker that outlived
its killed flush releasing the same batch as the restarted one.

The slow test's schedule is random. Its seed is printed and named in every assertion message;
replay a failure with ACCROCHAGE_CRASH_SEED=<seed>.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import random
import signal
import sqlite3
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from accrochage.app import build_core
from accrochage.commands.ingest import CHUNK
from accrochage.errors import SchemaValidationError
from accrochage.generate import GeneratedCertifier, generate_events
from accrochage.models.deadline import SystemClock, paris_today
from accrochage.models.decode import decode
from accrochage.models.event import DeliveredEvent, event_from_content
from accrochage.models.registry import Certifier, Emitter
from accrochage.settings import Settings, load_settings
from accrochage.settings.registry import registry_from
from accrochage.sinks import outbox as outbox_module
from accrochage.sinks.gate import check_file
from accrochage.sinks.outbox import ReleasedFile, release
from accrochage.sinks.profiles import PROFILES, profile_for
from accrochage.sinks.render import FluxHeader, render_flux
from accrochage.sinks.schemas import schema_path
from accrochage.streams.flush_report import FlushReport
from accrochage.streams.incoming import Incoming
from tests.support.crash import (
    Run,
    connect_readonly,
    id_techniques,
    leftover_partials,
    query,
    released_files,
    run,
    write_config,
)

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")

SEED_ENV = "ACCROCHAGE_CRASH_SEED"
EVENTS = 20_000
INVALID_RATIO = 0.02
EXACT_DUPLICATES = 400
RESENT = 400
"""Replays of the same content under a new event_id, occurred_at and source."""
MAX_RECORDS = 250
KILLS_EACH = 12
"""Kills wanted while ingesting and while flushing (the test needs at least MIN_KILLS_EACH)."""
MIN_KILLS_EACH = 10
MAX_RUNS = 100
"""The kill loop's bound, in runs, not seconds: a wall-clock budget (180 s for calibration
and kills) left a loaded machine, where each run takes longer, short of MIN_KILLS_EACH."""
RUN_TIMEOUT_S = 120.0
BUNDLED_XSD = PROFILES["1.1.2"].bundled_xsd


# -- the input -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Input:
    path: Path
    valid: frozenset[str]
    invalid: frozenset[str]
    lines: int


def write_events(path: Path, settings: Settings, seed: int) -> Input:
    """EVENTS events (some invalid) then replays, and which record ids must end where."""
    today = paris_today(SystemClock())
    certifiers = [GeneratedCertifier(c.key, c.certifications) for c in settings.certifiers]
    events = list(
        generate_events(
            EVENTS,
            certifiers,
            # a day back: no delivery can be "in the future" if midnight passes meanwhile
            today=today - timedelta(days=1),
            seed=seed,
            invalid_ratio=INVALID_RATIO,
        )
    )
    rng = random.Random(seed)
    replays = [dict(e) for e in rng.sample(events, EXACT_DUPLICATES)]
    for event in rng.sample(events, RESENT):
        resent = dict(event)
        resent["event_id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        resent["occurred_at"] = f"{today.isoformat()}T18:00:00+01:00"
        resent["source"] = "exam-platform-resend"
        replays.append(resent)
    rng.shuffle(replays)
    lines = [*events, *replays]
    path.write_text(
        "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in lines), encoding="utf-8"
    )
    registry = registry_from(settings)
    valid, invalid = set(), set()
    for event in events:
        (valid if decode(event, registry, today).valid else invalid).add(event["record_id"])
    assert len(valid) + len(invalid) == EVENTS, "record ids of the generator are not unique"
    assert invalid and valid, "the generator gave no invalid or no valid event"
    return Input(path, frozenset(valid), frozenset(invalid), len(lines))


# -- calibration ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Calibration:
    startup: float
    """`flush --force` on an empty state: start-up, migrations, "nothing due"."""
    ingest: float
    """One uninterrupted `ingest` of the whole file into an empty state."""
    flush: float
    """One uninterrupted `flush --force` of every valid record."""
    flushed: int
    """How many passages that flush wrote."""

    def flush_estimate(self, work: int) -> float:
        per_passage = max(self.flush - self.startup, 0.0) / max(self.flushed, 1)
        return self.startup + per_passage * work


def calibrate(folder: Path, events: Input) -> Calibration:
    config = write_config(folder, max_records=MAX_RECORDS)

    def timed(*args: str) -> float:
        done = run(config, args, folder / "calibration.log", kill_after=None, timeout=RUN_TIMEOUT_S)
        assert done.returncode == 0, f"calibration failed: {done.describe()}\n{_tail(done.log)}"
        return done.elapsed

    startup = timed("flush", "--force")
    ingest = timed("ingest", str(events.path))
    flush = timed("flush", "--force")
    (flushed,) = query(folder / "state.db", "SELECT count(*) FROM batch_members")[0]
    assert flushed == len(events.valid)
    return Calibration(startup, ingest, flush, flushed)


# -- what the outbox and the state say between runs ----------------------------------------------


def _tail(path: Path, lines: int = 15) -> str:
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(text[-lines:])


def holds_more_than(state: Path, records: float) -> bool:
    """Whether the state holds more than `records` records (polled while a run goes on)."""
    try:
        return stored_records(state) > records
    except sqlite3.Error:
        return False


def has_schema(state: Path) -> bool:
    """A run killed while starting may leave a database without (all) its tables yet."""
    if not state.exists():
        return False
    names = {r[0] for r in query(state, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    return {"records", "batches", "batch_members"} <= names


def stored_records(state: Path) -> int:
    if not has_schema(state):
        return 0
    return int(query(state, "SELECT count(*) FROM records")[0][0])


def unfinished_work(state: Path) -> int:
    """Passages the next `flush --force` has to write: pending records, unwritten batches."""
    if not has_schema(state):
        return 0
    (pending,) = query(state, "SELECT count(*) FROM records WHERE status = 'pending'")[0]
    (unwritten,) = query(
        state, "SELECT coalesce(sum(passages), 0) FROM batches WHERE state IN ('cut', 'failed')"
    )[0]
    return int(pending) + int(unwritten)


def snapshot(state: Path, outbox: Path) -> str:
    """What a run left: for the schedule printed at the end, to see where kills landed."""
    if not has_schema(state):
        return "no state yet"
    counts = {
        r[0]: r[1] for r in query(state, "SELECT status, count(*) FROM records GROUP BY status")
    }
    batches = {
        r[0]: r[1] for r in query(state, "SELECT state, count(*) FROM batches GROUP BY state")
    }
    return (
        f"records {sum(counts.values())} (pending {counts.get('pending', 0)}), "
        f"batches cut {batches.get('cut', 0)} written {batches.get('written', 0)}, "
        f"files {len(released_files(outbox))}, partials {len(leftover_partials(outbox))}"
    )


@dataclass
class OutboxWatch:
    """After every run: what a reader of the outbox sees is complete, valid and accounted for."""

    outbox: Path
    state: Path
    why: str
    checked: dict[Path, tuple[int, int, int]] = field(default_factory=dict)

    def check(self, after: Run) -> None:
        where = f"after {after.describe()} {self.why}"
        # a process left behind (a render worker) would go on writing after the "crash"
        assert not after.survivors, f"processes outlived the command: {after.survivors} {where}"
        batches = (
            {r["file_name"]: dict(r) for r in query(self.state, "SELECT * FROM batches")}
            if has_schema(self.state)
            else {}
        )
        files = released_files(self.outbox)
        for path in files:
            batch = batches.get(path.name)
            assert batch is not None, f"{path} is in the outbox but no batch names it {where}"
            assert path.parent == self.outbox / batch["certifier"], f"{path} misplaced {where}"
            stat = path.stat()
            key = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
            if self.checked.get(path) == key:
                continue
            try:
                check_file(path, BUNDLED_XSD)
            except SchemaValidationError as exc:
                pytest.fail(f"a released file is incomplete or invalid {where}: {exc}")
            self.checked[path] = key
        visible = {p.name for p in files}
        for batch in batches.values():
            if batch["state"] == "written":
                assert batch["file_name"] in visible, (
                    f"batch {batch['batch_id']} is written but {batch['file_name']} is not in "
                    f"the outbox {where}"
                )
        for leftover in leftover_partials(self.outbox):
            name = leftover.name.removeprefix(".").removesuffix(".partial")
            batch = batches.get(name)
            assert batch is not None and batch["state"] in ("cut", "failed"), (
                f"{leftover} left behind, but its batch is {batch and batch['state']} {where}"
            )


# -- the slow test -------------------------------------------------------------------------------


@pytest.fixture()
def crash_seed() -> int:
    seed = int(os.environ.get(SEED_ENV) or random.randrange(2**32))
    print(f"crash seed: {seed}")
    return seed


@pytest.mark.slow
def test_kill_9_while_ingesting_and_flushing_loses_and_duplicates_nothing(
    tmp_path: Path, crash_seed: int, official_xsd: Path
) -> None:
    started = time.monotonic()
    seed = crash_seed
    why = f"(crash seed {seed}; replay with {SEED_ENV}={seed})"
    rng = random.Random(seed)
    folder = tmp_path / "crash"
    config = write_config(folder, max_records=MAX_RECORDS)
    state, outbox = folder / "state.db", folder / "outbox"
    settings = load_settings(config)
    events = write_events(tmp_path / "events.jsonl", settings, seed)
    calibration = calibrate(tmp_path / "calibration", events)
    print(
        f"calibration: start-up {calibration.startup:.2f}s, ingest {calibration.ingest:.2f}s, "
        f"flush {calibration.flush:.2f}s ({calibration.flushed} passages)"
    )

    watch = OutboxWatch(outbox, state, why)
    runs: list[Run] = []
    left: list[str] = []
    kills: Counter[str] = Counter()
    logs = folder / "logs"
    logs.mkdir()

    def attempt(
        command: str, args: list[str], delay: float, trigger: Callable[[], bool] | None = None
    ) -> Run:
        done = run(
            config,
            args,
            logs / f"{len(runs):03d}-{command}.log",
            kill_after=delay,
            timeout=RUN_TIMEOUT_S,
            trigger=trigger,
        )
        runs.append(done)
        left.append(snapshot(state, outbox))
        if done.killed:
            kills[command] += 1
        else:
            assert done.returncode == 0, f"{done.describe()} ended badly {why}\n{_tail(done.log)}"
        watch.check(done)
        return done

    # Ingest: a restarted ingest reads the file from the start, and what is stored replays
    # as no-ops. The first run is killed while it starts (creating the state). Each later kill
    # falls past what is stored: once the state holds more than a random count between what
    # it held and an even share of what is left, the kill is due a random part of a chunk's
    # time later (decoding, inside the transaction, or committing). So the kills spread over
    # the whole file, and every flush in between has new records to cut and write. Once all
    # is stored, kills fall at random points of a whole run (replays only).
    # Flush: each kill is due at a random point of that flush's estimated duration.
    chunk_s = calibration.ingest / (events.lines / CHUNK)
    whole_ingest = calibration.ingest
    while kills["ingest"] < KILLS_EACH or kills["flush"] < KILLS_EACH:
        if len(runs) >= MAX_RUNS:
            break
        if kills["ingest"] < KILLS_EACH or unfinished_work(state) == 0:
            stored = stored_records(state)
            trigger = None
            if not runs:
                delay = rng.uniform(0.05, 0.95) * calibration.startup
            elif stored < EVENTS:
                share = (EVENTS - stored) / max(KILLS_EACH - kills["ingest"], 1)
                trigger = partial(holds_more_than, state, stored + rng.uniform(0, share))
                delay = rng.uniform(0, chunk_s)
            else:
                delay = rng.uniform(0.05, 0.95) * whole_ingest
            done = attempt("ingest", ["ingest", str(events.path)], delay, trigger)
            if not done.killed:
                whole_ingest = done.elapsed
        work = unfinished_work(state)
        if kills["flush"] < KILLS_EACH and (work > 0 or kills["ingest"] >= KILLS_EACH):
            estimate = calibration.flush_estimate(work)
            attempt("flush", ["flush", "--force"], rng.uniform(0.05, 0.95) * estimate)

    schedule = "\n".join(
        f"  {r.describe(log=False)}: {what}" for r, what in zip(runs, left, strict=True)
    )
    print(f"{len(runs)} runs, kills: {dict(kills)}\n{schedule}")
    assert kills["ingest"] >= MIN_KILLS_EACH and kills["flush"] >= MIN_KILLS_EACH, (
        f"not enough crash points ({dict(kills)}) in {MAX_RUNS} runs {why}\n{schedule}"
    )
    assert kills.total() >= 20, why

    # the restart that finishes the job
    for args in (["ingest", str(events.path)], ["flush", "--force"]):
        done = run(config, args, logs / f"final-{args[0]}.log", kill_after=None, timeout=120)
        assert done.returncode == 0, f"{done.describe()} {why}\n{_tail(done.log)}"
        watch.check(done)
    again = run(config, ["flush", "--force"], logs / "again.log", kill_after=None, timeout=120)
    assert again.returncode == 0 and "nothing due" in again.log.read_text(), (
        f"a second flush still had work: {again.describe()} {why}\n{_tail(again.log)}"
    )

    check_final_state(state, outbox, events, official_xsd, why)
    print(f"crash test: {time.monotonic() - started:.1f}s {why}")


def check_final_state(
    state: Path, outbox: Path, events: Input, official_xsd: Path, why: str
) -> None:
    # the files: every valid record in exactly one, each complete and valid
    assert not leftover_partials(outbox), f"partial files left: {leftover_partials(outbox)} {why}"
    files = released_files(outbox)
    holder: dict[str, Path] = {}
    per_file: dict[Path, list[str]] = {}
    for path in files:
        assert not path.name.startswith("."), f"a temporary name was released: {path} {why}"
        for xsd in (BUNDLED_XSD, official_xsd):
            try:
                check_file(path, xsd)
            except SchemaValidationError as exc:
                pytest.fail(f"{path} is not valid against {xsd}: {exc} {why}")
        ids = id_techniques(path)
        per_file[path] = ids
        for record_id in ids:
            assert record_id not in holder, (
                f"{record_id} is released twice: in {holder[record_id]} and {path} {why}"
            )
            holder[record_id] = path
    missing = events.valid - holder.keys()
    assert not missing, f"{len(missing)} valid record(s) in no file: {sorted(missing)[:5]} {why}"
    extra = holder.keys() - events.valid
    assert not extra, f"{len(extra)} record(s) released but not valid: {sorted(extra)[:5]} {why}"

    # the state agrees
    conn = connect_readonly(state)
    try:
        (integrity,) = conn.execute("PRAGMA integrity_check").fetchone()
        assert integrity == "ok", f"integrity_check: {integrity} {why}"
        batches = {r["batch_id"]: dict(r) for r in conn.execute("SELECT * FROM batches")}
        states = Counter(b["state"] for b in batches.values())
        assert set(states) == {"written"}, f"batches not all written: {dict(states)} {why}"
        by_path = {Path(b["file_path"]): b for b in batches.values()}
        assert set(by_path) == set(files), (
            f"files and written batches differ: {sorted(set(by_path) ^ set(files))[:5]} {why}"
        )
        for path, batch in by_path.items():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            assert digest == batch["sha256"], f"{path}: sha256 is not the recorded one {why}"
            assert path.name == batch["file_name"], f"{path}: not the frozen name {why}"
            members = [
                r
                for (r,) in conn.execute(
                    "SELECT record_id FROM batch_members WHERE batch_id = ?", (batch["batch_id"],)
                )
            ]
            assert sorted(members) == sorted(per_file[path]), (
                f"{path}: its passages are not the members of batch {batch['batch_id']} {why}"
            )
            assert batch["passages"] == len(members), why
        records = {r["record_id"]: dict(r) for r in conn.execute("SELECT * FROM records")}
        assert records.keys() == events.valid | events.invalid, (
            f"{len(records)} records stored for {EVENTS} record ids {why}"
        )
        for record_id in events.valid:
            record = records[record_id]
            assert record["status"] == "batched", f"{record_id} is {record['status']} {why}"
            batch = batches.get(record["batch_id"])
            assert batch is not None and Path(batch["file_path"]) == holder[record_id], (
                f"{record_id} is in {holder[record_id]} but its batch is {record['batch_id']} {why}"
            )
            assert record["version"] == 1 and record["correction_version"] is None, (
                f"{record_id}: a replay was taken for a correction {why}"
            )
        for record_id in events.invalid:
            record = records[record_id]
            assert record["status"] == "invalid", f"{record_id} is {record['status']} {why}"
            assert json.loads(record["errors"]), f"{record_id} is invalid with no error {why}"
            assert record["batch_id"] is None, why
        cuts = Counter(
            r
            for (r,) in conn.execute(
                "SELECT record_id FROM history WHERE from_status = 'pending' "
                "AND to_status = 'batched'"
            )
        )
        twice = [r for r, n in cuts.items() if n != 1]
        assert not twice and cuts.keys() == events.valid, (
            f"records cut more than once or never: {twice[:5]} {why}"
        )
        (unusable,) = conn.execute("SELECT count(*) FROM unusable").fetchone()
        assert unusable == 0, f"{unusable} events logged as unusable {why}"
    finally:
        conn.close()


# -- the fast tests: crashes built by hand ------------------------------------------------------


def _frozen(conn: sqlite3.Connection, batch_id: str) -> tuple[FluxHeader, list[DeliveredEvent]]:
    """The batch as frozen in the state: the header read here, the members as flush reads them."""
    row = conn.execute("SELECT * FROM batches WHERE batch_id = ?", (batch_id,)).fetchone()
    header = FluxHeader(
        row["batch_id"],
        datetime.fromisoformat(row["created_at"]),
        Emitter(row["emitter_id_client"], row["nature"]),
        Certifier(row["certifier"], row["certifier_id_client"], row["id_contrat"], frozenset()),
        profile_for(row["schema_version"]),
    )
    members = conn.execute(
        "SELECT c.payload, c.event_id FROM batch_members m JOIN contents c "
        "ON c.record_id = m.record_id AND c.version = m.version "
        "WHERE m.batch_id = ? ORDER BY m.code, m.record_id",
        (batch_id,),
    )
    return header, [event_from_content(payload, event_id) for payload, event_id in members]


def _events(settings: Settings, count: int) -> list[dict[str, Any]]:
    certifiers = [GeneratedCertifier(c.key, c.certifications) for c in settings.certifiers]
    today: date = paris_today(SystemClock()) - timedelta(days=1)
    return list(generate_events(count, certifiers, today=today, seed=11))


def _cut(folder: Path, count: int) -> tuple[Settings, list[dict[str, Any]], FlushReport]:
    """`count` events ingested and cut into batches of 40, none written yet."""
    settings = load_settings(write_config(folder, max_records=40))
    events = _events(settings, count)
    core = build_core(settings)
    try:
        core.ingestor.ingest([Incoming(json.dumps(e).encode(), "test") for e in events])
        report = FlushReport()
        core.flusher.cut(report, force=True)
    finally:
        core.close()
    return settings, events, report


def test_file_released_but_not_marked_written_is_rewritten_identically(tmp_path: Path) -> None:
    # a process cuts batches, releases the first one's file and dies before marking it written;
    # it also dies half-way through rendering the second one (a .partial is left)
    settings, events, report = _cut(tmp_path, 200)
    state, outbox = settings.paths.state, settings.paths.outbox
    assert len(report.cut) >= 3, report.cut
    first, second = report.cut[0].batch_id, report.cut[1].batch_id
    conn = connect_readonly(state)
    try:
        header, members = _frozen(conn, first)
        early: ReleasedFile = release(
            outbox, header, members, xsd=schema_path(header.profile), max_bytes=None
        )
        header2, members2 = _frozen(conn, second)
        names = {b: n for b, n in conn.execute("SELECT batch_id, file_name FROM batches")}
    finally:
        conn.close()
    assert early.path.name == names[first]
    before = early.path.read_bytes()
    rendered = io.BytesIO()
    render_flux(rendered, header2, members2)
    partial = outbox / header2.certifier.key / f".{names[second]}.partial"
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(rendered.getvalue()[: len(rendered.getvalue()) // 2])
    assert [p.name for p in released_files(outbox)] == [early.path.name], (
        "a .partial file counts as released"
    )
    assert query(state, "SELECT state FROM batches WHERE batch_id = ?", (first,))[0][0] == "cut"

    # the restart: a new core, a normal flush
    core = build_core(settings)
    try:
        again = core.flusher.flush()
    finally:
        core.close()
    assert again.ok, again.failed
    assert not again.cut, "nothing was pending: no new batch"
    written = {w.batch_id: w for w in again.written}
    assert set(written) == {c.batch_id for c in report.cut}
    assert written[first].path == early.path
    assert written[first].sha256 == early.sha256
    assert early.path.read_bytes() == before, "the batch was rendered again with other bytes"
    holding = [p for p in outbox.rglob("*") if first in p.name]
    assert holding == [early.path], f"more than one file for batch {first}: {holding}"
    row = query(state, "SELECT * FROM batches WHERE batch_id = ?", (first,))[0]
    assert row["state"] == "written"
    assert row["sha256"] == early.sha256 == hashlib.sha256(before).hexdigest()
    assert Path(row["file_path"]) == early.path

    # the killed render did not block its batch and left nothing behind
    assert not partial.exists() and not leftover_partials(outbox)
    second_file = written[second].path
    assert second_file.name == names[second]
    assert check_file(second_file, BUNDLED_XSD).passages == report.cut[1].passages
    assert second_file.read_bytes() == rendered.getvalue()

    # every record once, in the file of its batch
    seen = Counter(i for path in released_files(outbox) for i in id_techniques(path))
    assert set(seen.values()) == {1}
    assert seen.keys() == {e["record_id"] for e in events}
    assert len(released_files(outbox)) == len(report.cut)


def test_two_releases_of_one_batch_at_once_publish_the_complete_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A render worker of a killed flush outlives it (its pool processes are not its threads)
    and renders a batch while the restarted flush releases the same batch, then dies too.

    The restarted flush has checked its temporary file and is about to rename it when the
    worker opens the same temporary name and starts over. What is published must still be the
    complete file, with the digest the restarted flush reports.
    """
    settings, _, report = _cut(tmp_path, 60)
    outbox = settings.paths.outbox
    conn = connect_readonly(settings.paths.state)
    try:
        header, members = _frozen(conn, report.cut[0].batch_id)
    finally:
        conn.close()
    xsd = schema_path(header.profile)
    restarted = threading.get_ident()
    checked, worker_started, worker_dies = threading.Event(), threading.Event(), threading.Event()
    real_check = outbox_module.check_file

    def check_then_pause(path: Path, schema: Path) -> Any:
        result = real_check(path, schema)
        if threading.get_ident() == restarted:
            checked.set()
            # give the worker its chance (it may also have to wait for this release)
            worker_started.wait(timeout=1.0)
        return result

    monkeypatch.setattr(outbox_module, "check_file", check_then_pause)

    def killed_half_way() -> Iterator[DeliveredEvent]:
        yield members[0]
        worker_started.set()
        worker_dies.wait(timeout=30)  # stands for a SIGKILL: it never goes further
        raise RuntimeError("worker killed")

    outcome: list[BaseException | ReleasedFile] = []

    def worker() -> None:
        checked.wait(timeout=30)
        try:
            outcome.append(release(outbox, header, killed_half_way(), xsd=xsd))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    try:
        released = release(outbox, header, members, xsd=xsd)
        # what is published is complete, valid, and is what the restarted flush reports
        assert check_file(released.path, BUNDLED_XSD).passages == len(members)
        assert hashlib.sha256(released.path.read_bytes()).hexdigest() == released.sha256
        assert released_files(outbox) == [released.path]
    finally:
        worker_dies.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert outcome and isinstance(outcome[0], RuntimeError), outcome
    assert check_file(released.path, BUNDLED_XSD).passages == len(members)
    assert hashlib.sha256(released.path.read_bytes()).hexdigest() == released.sha256
    assert not leftover_partials(outbox), "the dead worker's temporary file was left"


def test_a_full_disk_names_the_file_it_could_not_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails for want of space raises an OSError without a file name: the
    batch's error said "No space left on device" without saying which disk or folder."""
    settings, _, report = _cut(tmp_path, 40)
    conn = connect_readonly(settings.paths.state)
    try:
        header, members = _frozen(conn, report.cut[0].batch_id)
    finally:
        conn.close()

    def full_disk(*_args: Any, **_kwargs: Any) -> Any:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(outbox_module, "write_flux", full_disk)
    with pytest.raises(OSError) as raised:
        release(settings.paths.outbox, header, members, xsd=schema_path(header.profile))
    assert raised.value.errno == errno.ENOSPC
    assert str(settings.paths.outbox / header.certifier.key) in str(raised.value)
    assert not leftover_partials(settings.paths.outbox) and not released_files(
        settings.paths.outbox
    )
