"""Decoding in decode processes (`streams/decoding.py`): the same results and the same state
as decoding where events are stored, reference data included, and a dead decode process
fails its group loudly, nothing of it stored."""

from __future__ import annotations

import json
import os
import pickle
import signal
import time
from collections.abc import Iterator
from concurrent.futures import Future
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from accrochage.app import log_source
from accrochage.app_writers import build_writer_parts
from accrochage.cli import main
from accrochage.commands.ingest import CHUNK
from accrochage.models.deadline import FixedClock
from accrochage.models.decode import Kind
from accrochage.models.problems import Problem
from accrochage.models.registry import Certifier, Registry
from accrochage.refdata.load import load_refdata
from accrochage.refdata.memory import ReferenceHolder
from accrochage.sinks.profiles import profile_for
from accrochage.state.sqlite import SqliteStore
from accrochage.state.sqlite.refdata import read_only_refdata
from accrochage.streams.decoding import DecodeFailed, DecodePool, lean
from accrochage.streams.incoming import Incoming, decode_ready
from accrochage.streams.ingest import Ingestor
from accrochage.streams.writer_process import ProcessWriter
from tests.factories import EMITTER, delivered_event, revoked_event
from tests.refdata_files import cog_folder, fc, refdata_dir
from tests.test_cli_tracker import RECENT
from tests.test_tracker import event, make_core, write_config

__all__ = ["refdata_dir"]

SIRET = "79279132900016"
CODES = ("RS6604", "RS5000", "RS99999", "RS5875")
NOW = datetime.fromisoformat("2026-12-01T10:00:00+01:00")


def registry() -> Registry:
    return Registry(
        EMITTER, [Certifier("pix", "03VML243", "MCFCER000209", frozenset(CODES), SIRET)]
    )


def corpus() -> list[Incoming]:
    """Valid, invalid, unusable, revoked, a lone surrogate, and within the same group an
    original followed by its correction, an unchanged repeat, and a revocation after both."""
    cert = {"type": "RS", "code": "RS6604"}
    raws: list[Any] = [
        delivered_event(record_id="A-1", certification=cert),
        delivered_event(record_id="A-2", certification={"type": "RS", "code": "RS99999"}),
        delivered_event(record_id="A-3", certification={"type": "RS", "code": "RS5000"}),
        delivered_event(record_id="A-4", certification=cert, delivered_on="not a day"),
        json.dumps(delivered_event(record_id="A-5", certification=cert)).encode(),
        b"{not json",
        b'"a string"',
        delivered_event(record_id=None),
        delivered_event(record_id="A-1", certification=cert),  # the same content: unchanged
        delivered_event(record_id="A-1", certification=cert, score="400"),  # a correction
        revoked_event(record_id="A-3", certification={"type": "RS", "code": "RS5000"}),
        revoked_event(record_id="A-9"),  # nothing to revoke
        b'{"record_id": "A-6", "certifier": "pix", "verbatim": "\\ud800"}',
        b'{"record_id": "\\udc00"}',
        delivered_event(record_id="A-7", certification=cert, source="s" * 400),
    ]
    read = [
        Incoming(
            delivered_event(record_id="A-8", certification=cert),
            "file:test",
            problems=(CELL_BEYOND,),
        ),
        Incoming(b"(line 9 of f: not read)", "file:test", problems=(NOT_READ,)),
    ]
    return [Incoming(raw, "file:test") for raw in raws] + read


CELL_BEYOND = Problem("event", "1 cell(s) beyond the header's 11 columns were not read")
NOT_READ = Problem("event", "line 9 could not be read as a CSV row")


def test_a_decoded_event_crosses_a_pipe_unchanged() -> None:
    """What decode processes send (compact pickles of `Decoded`) comes back equal: valid with
    its passage, invalid with its errors and warnings, unusable, revoked."""
    today = NOW.date()
    passages = profile_for("1.1.5")
    for item in corpus():
        sent = lean(decode_ready(item.raw, registry(), today, None, passages))
        back = pickle.loads(pickle.dumps(sent, protocol=pickle.HIGHEST_PROTOCOL))
        assert back == sent
        assert type(back[0].kind) is Kind
    valid = lean(decode_ready(corpus()[0].raw, registry(), today, None, passages))[0]
    assert valid.passage is not None and valid.delivered_on is not None


@pytest.fixture
def stores(refdata_dir: Path, tmp_path: Path) -> Iterator[tuple[SqliteStore, SqliteStore]]:
    here, there = SqliteStore(tmp_path / "here.db"), SqliteStore(tmp_path / "there.db")
    for store in (here, there):
        load_refdata(store.refdata(), fc(refdata_dir), cog_folder(tmp_path / "cog"))
    yield here, there
    here.close()
    there.close()


def pool_for(store: SqliteStore, holder: ReferenceHolder, clock: FixedClock) -> DecodePool:
    return DecodePool(
        registry(),
        clock,
        holder.current,
        processes=2,
        refdata=partial(read_only_refdata, store.path),
    )


def stored(store: SqliteStore, ids: list[str]) -> dict[str, Any]:
    with store.transaction() as tx:
        return tx.records(ids)


def test_the_pool_gives_the_results_and_the_state_of_decoding_in_process(
    stores: tuple[SqliteStore, SqliteStore],
) -> None:
    here, there = stores
    clock = FixedClock(NOW)
    items = corpus()
    holder_here = ReferenceHolder(here.refdata())
    holder_there = ReferenceHolder(there.refdata())
    expected = Ingestor(here, registry(), clock, holder_here.current).ingest(items)
    pool = pool_for(there, holder_there, clock)
    try:
        decoded = pool.decode(items)
    finally:
        pool.close()
    assert all(item.decoded is not None for item in decoded)
    assert all(item.decoded[0].event is None for item in decoded if item.decoded)  # lean
    got = Ingestor(there, registry(), clock, holder_there.current).ingest(decoded)
    assert [r.as_dict() for r in got] == [r.as_dict() for r in expected]
    # Reference-data rules ran in the decode process: an unknown code, a replaced one.
    assert [p.field for p in got[1].errors] == ["certification.code"]
    assert "certification.code" in [p.field for p in got[2].warnings]
    outcomes = [r.outcome for r in got]
    assert outcomes[8:11] == ["unchanged", "updated", "withdrawn"]
    ids = [f"A-{n}" for n in range(1, 10)] + ["A-6"]
    assert stored(there, ids) == stored(here, ids)
    # Problems found reading an input: beside its validation's, or alone when it is no event.
    assert (got[-2].status, got[-2].errors) == ("invalid", [CELL_BEYOND])
    assert (got[-1].outcome, got[-1].errors) == ("unusable", [NOT_READ])


def test_a_decode_process_follows_new_reference_data(tmp_path: Path, refdata_dir: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    holder = ReferenceHolder(store.refdata())
    pool = pool_for(store, holder, FixedClock(NOW))
    unknown = delivered_event(record_id="B-1", certification={"type": "RS", "code": "RS99999"})
    try:
        (before,) = pool.decode([Incoming(unknown)])
        assert before.decoded is not None and before.decoded[0].errors == []
        load_refdata(store.refdata(), fc(refdata_dir), cog_folder(tmp_path / "cog"))
        assert holder.refresh()  # what the refdata job does in a service
        (after,) = pool.decode([Incoming(unknown)])
        assert after.decoded is not None
        assert [p.field for p in after.decoded[0].errors] == ["certification.code"]
    finally:
        pool.close()
        store.close()


def decode_processes(pool: DecodePool) -> list[int]:
    helpers = pool._pool
    assert helpers is not None
    return helpers.pids


def test_a_killed_decode_process_fails_its_group_and_the_next_starts_a_new_pool(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "state.db")
    pool = pool_for(store, ReferenceHolder(store.refdata()), FixedClock(NOW))
    items = [Incoming(delivered_event(record_id=f"C-{n}")) for n in range(50)]
    try:
        pool.decode(items[:1])
        for pid in decode_processes(pool):
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
        with pytest.raises(DecodeFailed) as failed:
            pool.decode(items)
        assert "C-" not in str(failed.value) and "Haba" not in str(failed.value)
        again = pool.decode(items)
        assert all(item.decoded is not None for item in again)
    finally:
        pool.close()
        store.close()


def test_the_other_decode_process_ends_when_one_is_killed(tmp_path: Path) -> None:
    """A broken pool ends its other processes with SIGTERM: one that ignored it (Ctrl-C is
    what decode processes ignore) outlived its pool, and the service's exit waited on it for
    ever."""
    store = SqliteStore(tmp_path / "state.db")
    pool = pool_for(store, ReferenceHolder(store.refdata()), FixedClock(NOW))
    raw = json.dumps(delivered_event()).encode()
    items = [Incoming(raw) for _ in range(20_000)]
    try:
        pool.decode(items[:1])
        pending = pool.submit(items)
        killed, survivor = decode_processes(pool)
        # Both stopped at work, whatever the machine's speed (a sleep here let a faster
        # decoding finish the group first), then one killed, the other let go on.
        for pid in (killed, survivor):
            os.kill(pid, signal.SIGSTOP)
        os.kill(killed, signal.SIGKILL)
        os.kill(survivor, signal.SIGCONT)
        with pytest.raises(DecodeFailed):
            pending.result(60)
        deadline = time.monotonic() + 30
        while Path(f"/proc/{survivor}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not Path(f"/proc/{survivor}").exists(), "the other decode process outlived it"
    finally:
        pool.close()
        store.close()


def test_a_decode_process_killed_while_decoding_fails_the_group(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    pool = pool_for(store, ReferenceHolder(store.refdata()), FixedClock(NOW))
    raw = json.dumps(delivered_event()).encode()
    items = [Incoming(raw) for _ in range(20_000)]
    try:
        pool.decode(items[:1])
        pending = pool.submit(items)
        for pid in decode_processes(pool):
            os.kill(pid, signal.SIGKILL)
        with pytest.raises(DecodeFailed):
            pending.result(60)
        assert len(pool.decode(items[:10])) == 10  # a new pool
    finally:
        pool.close()
        store.close()


def _config(tmp_path: Path, name: str, processes: int) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    config = write_config(folder)
    with config.open("a", encoding="utf-8") as out:
        out.write(f"\n[ingest]\ndecode_processes = {processes}\n")
    return config


def _events_file(tmp_path: Path, count: int, distinct: int = 1000) -> Path:
    lines = []
    for n in range(count):
        if n % 97 == 5:
            lines.append("{broken")
        elif n % 89 == 3:
            lines.append(json.dumps(event(f"D-{n}", delivered_on="2026-02-30")))
        else:
            lines.append(json.dumps(event(f"D-{n % distinct}", delivered_on=RECENT, score=str(n))))
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _records(config: Path) -> Any:
    result = CliRunner().invoke(main, ["--config", str(config), "records", "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_ingest_with_decode_processes_prints_and_stores_the_same(tmp_path: Path) -> None:
    events = _events_file(tmp_path, 2600)  # corrections of earlier chunks' records too
    outputs, states = [], []
    for processes in (0, 2):
        config = _config(tmp_path, f"p{processes}", processes)
        result = CliRunner().invoke(main, ["--config", str(config), "ingest", str(events)])
        assert result.exit_code == 0, result.output
        outputs.append(result.output.replace(str(events), "FILE"))
        states.append(_records(config))
    assert outputs[0] == outputs[1]
    assert states[0] == states[1]


def test_ingest_stops_at_a_dead_decode_process_without_a_partial_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    two = 2 * CHUNK
    events = _events_file(tmp_path, two + CHUNK + 100, distinct=two)
    config = _config(tmp_path, "dies", 1)
    submitted = []
    real = DecodePool.submit

    def third_dies(self: DecodePool, items: list[Incoming]) -> Future[list[Incoming]]:
        submitted.append(len(items))
        if len(submitted) == 3:
            done: Future[list[Incoming]] = Future()
            done.set_exception(DecodeFailed("a decode process ended before answering"))
            return done
        return real(self, items)

    monkeypatch.setattr(DecodePool, "submit", third_dies)
    result = CliRunner().invoke(main, ["--config", str(config), "ingest", str(events)])
    assert result.exit_code == 1
    assert f"{two} events read" in result.output
    assert "ingest stopped: a decode process ended" in result.output
    store = SqliteStore(config.parent / "var" / "state.db")
    try:
        records = stored(store, [f"D-{n}" for n in range(two)])
    finally:
        store.close()
    assert len(records) == len([n for n in range(two) if n % 97 != 5])
    # The third chunk corrects the first chunk's records: none of it was stored.
    assert {record.version for record in records.values()} == {1}


def test_the_writer_process_stores_what_the_pool_decoded_in_order(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Kafka: groups decoded in the serving process's pool, stored by the writer process in
    the order they were submitted, offsets in the same transactions."""
    core, _ = make_core(tmp_path)
    assert core.decoder is not None  # one decode process by default
    writer = ProcessWriter(partial(build_writer_parts, tmp_path / "accrochage.toml"), core.decoder)
    try:
        groups = [
            [
                Incoming(json.dumps(event("K-1", score=str(300 + n))).encode(), "k", 0, n, b"pix")
                for n in range(first, first + 3)
            ]
            for first in range(0, 30, 3)
        ]
        stored = [writer.submit(group) for group in groups]
        assert [future.result(60) for future in stored] == [3] * 10
    finally:
        writer.shutdown(wait=True)
    assert not [r for r in caplog.records if "undecoded" in r.getMessage()]
    try:
        (record,) = stored_records(core.store, ["K-1"])
        assert record.version == 30  # each event corrected the one before, in order
        assert core.store.offsets(log_source(core.settings).topic) == {0: 30}
    finally:
        core.close()


def stored_records(store: Any, ids: list[str]) -> list[Any]:
    with store.transaction() as tx:
        return list(tx.records(ids).values())


def test_decode_processes_leave_what_reaches_the_group_to_their_starter(
    tmp_path: Path,
) -> None:
    """Ctrl-C and a closed terminal (SIGHUP) reach every process of the group: the service
    stops the pool in order. SIGHUP's default action killed each decode process at once."""
    store = SqliteStore(tmp_path / "state.db")
    pool = pool_for(store, ReferenceHolder(store.refdata()), FixedClock(NOW))
    items = [Incoming(delivered_event(record_id=f"G-{n}")) for n in range(50)]
    try:
        pool.start()
        helpers = decode_processes(pool)
        for pid in helpers:
            wait_ignoring(pid, signal.SIGHUP, signal.SIGINT)
            os.kill(pid, signal.SIGHUP)
            os.kill(pid, signal.SIGINT)
        decoded = pool.decode(items)  # a pool that lost a process says DecodeFailed
        assert all(item.decoded is not None for item in decoded)
        assert decode_processes(pool) == helpers, "the same processes, alive"
    finally:
        pool.close()
        store.close()


def wait_ignoring(pid: int, *signums: signal.Signals) -> None:
    """Until process `pid` ignores `signums` (its start-up set them), at most 60 s."""
    wanted = sum(1 << (signum - 1) for signum in signums)
    deadline = time.monotonic() + 60
    while True:
        status = Path(f"/proc/{pid}/status").read_text()
        ignored = int(status.split("SigIgn:")[1].split()[0], 16)
        if ignored & wanted == wanted:
            return
        assert time.monotonic() < deadline, f"process {pid} never ignored {signums}"
        time.sleep(0.05)
