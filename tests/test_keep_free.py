"""Events leave `state.keep_free_bytes` free on the state's disk: below it they are refused
(`507 storage_low`; from a log they wait), while the batch files, reports and corrections
still write. Without it, a platform sending without end filled the disk, and the files due
at the CDC could no longer be written, for every certifier.

The disk's free space is real (`shutil.disk_usage`) wherever a test can ask more of it than
any disk has (`BEYOND`); tests that must see the space come back set what the state's
location reports, since no test may fill the machine's disk.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from accrochage.api.errors import SERVER_ERRORS_LOGGED_EVERY
from accrochage.app import Core, build_core
from accrochage.errors import StorageLowError
from accrochage.models.deadline import SystemClock
from accrochage.runtimes.embedded import build_service
from accrochage.settings import load_settings
from accrochage.state.sqlite.location import SqliteLocation
from accrochage.streams import writer as writer_module
from accrochage.streams.incoming import Incoming
from accrochage.streams.log_lines import LinesEvery
from accrochage.streams.log_source import LogSource
from accrochage.streams.room import MIB, check_room, storage_low
from accrochage.streams.writer import WriterService
from tests.test_cli_tracker import outstanding_json, run, write_jsonl
from tests.test_doctor import doctor, findings, with_state
from tests.test_http import recent
from tests.test_http_writer_process import serving
from tests.test_ingest_scope import OP, OPERATOR, PIX, SCOPED_API, post
from tests.test_metrics import parse, total
from tests.test_service_process import free_port, wait_healthy
from tests.test_tracker import write_config, xml_files

BEYOND = 2**62
"""More bytes than any disk has free: events are refused whatever the machine."""
ANSWER_WITHIN = 60.0


def test_storage_low_says_what_is_free_and_what_to_do() -> None:
    low = storage_low(100 * MIB, 256 * MIB)
    assert low is not None
    assert (low.code, low.status) == ("storage_low", 507)
    assert str(low).startswith("the disk holding the state has 100 MiB free, less than ")
    assert "state.keep_free_bytes (256 MiB)" in str(low) and "send them again" in str(low)
    assert storage_low(256 * MIB, 256 * MIB) is None
    assert storage_low(None, 256 * MIB) is None, "unknown: the write itself says what is wrong"


def test_nothing_kept_free_never_asks_the_disk() -> None:
    class NoDisk(SqliteLocation):
        def free_bytes(self) -> int | None:
            raise AssertionError("asked")

    check_room(NoDisk(Path("nowhere.db")), 0)
    with pytest.raises(StorageLowError):
        check_room(SqliteLocation(Path(__file__)), BEYOND)


# -- the command line ---------------------------------------------------------------------------


def test_ingest_is_refused_below_the_space_kept_and_flush_still_writes(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    run(config, "ingest", str(write_jsonl(tmp_path / "first.jsonl", [recent("K-1")])))
    low = write_config(tmp_path, state={"keep_free_bytes": BEYOND})
    later = write_jsonl(tmp_path / "later.jsonl", [recent("K-2"), recent("K-3")])
    refused = run(low, "ingest", str(later), code=1)
    assert "Traceback" not in refused.stderr
    assert refused.stderr.startswith("error: ingest stopped: the disk holding the state has ")
    assert "state.keep_free_bytes" in refused.stderr
    assert [r["record_id"] for r in outstanding_json(low)] == ["K-1"]
    # What meets the deadline still writes: the batch file, the correction request.
    run(low, "flush", "--force")
    assert len(xml_files(tmp_path / "var" / "outbox")) == 1
    opened = run(low, "correction-request", "add", "K-1", "--received-on", "2026-11-20")
    assert opened.stdout.strip()


# -- HTTP ---------------------------------------------------------------------------------------


@pytest.fixture(params=["thread", "process"])
def low_core(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Core, bool]]:
    settings = load_settings(
        write_config(tmp_path, api=SCOPED_API, state={"keep_free_bytes": BEYOND})
    )
    built = build_core(settings, SystemClock())
    yield built, request.param == "process"
    built.close()


@asynccontextmanager
async def service(core: Core, separate: bool) -> AsyncIterator[aiohttp.ClientSession]:
    async with serving(build_service(core, timer=False, separate_writer=separate)) as client:
        yield client


async def get(client: aiohttp.ClientSession, path: str, headers: dict[str, str]) -> Any:
    async with client.get(path, headers=headers) as response:
        return response.status, await response.json()


async def test_events_are_507_storage_low_and_the_operator_still_writes(
    low_core: tuple[Core, bool], caplog: pytest.LogCaptureFixture
) -> None:
    core, separate = low_core
    async with service(core, separate) as client:
        status, answer = await post(client, recent("L-1"), PIX)
        assert (status, answer["error"]["code"]) == (507, "storage_low"), answer
        assert "MiB" not in answer["error"]["message"], "the operator's details, to a platform"
        status, answer = await post(client, [recent("L-2"), recent("L-3")], PIX)
        assert (status, answer["error"]["code"]) == (507, "storage_low"), answer
        status, health = await get(client, "/health", OP)
        assert (status, health["reason"]) == (503, "storage_low")
        assert "state.keep_free_bytes" in health["message"]
        status, health = await get(client, "/health", PIX)
        assert (status, health["reason"]) == (503, "storage_low")
        assert "keep_free" not in health["message"]
        status, records = await get(client, "/records", OP)
        assert (status, records["records"]) == (200, [])
        # A check stores nothing; a correction request is the operator's, not an event.
        status, checked = await post(client, recent("L-1"), PIX, "/check")
        assert status == 200, checked
        request = {"record_id": "L-1", "received_on": "2026-11-20"}
        status, opened = await post(client, request, OP, "/correction-requests")
        assert status == 201, opened
        async with client.get("/metrics", headers=OP) as response:
            text = await response.text()
    said = [r for r in caplog.records if r.getMessage().startswith("HTTP 507")]
    assert len(said) == 1, "a line per refused request, into a log on a disk short of room"
    samples = parse(text)
    assert total(samples, "accrochage_state_keep_free_bytes") == BEYOND
    assert total(samples, "accrochage_state_free_bytes") > 0


async def page(client: aiohttp.ClientSession) -> str:
    async with client.get("/ui", headers=OP) as response:
        assert response.status == 200
        return await response.text()


class Disk:
    """What the state's location reports free, set by the test (no test fills the disk)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, free: int) -> None:
        self.free = free
        self.asked = 0
        self.asked_again = threading.Event()
        monkeypatch.setattr(SqliteLocation, "free_bytes", self._free_bytes)

    def _free_bytes(self) -> int:
        self.asked += 1
        if self.asked >= 3:
            self.asked_again.set()
        return self.free


async def test_health_says_ok_once_there_is_room_again_without_a_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = Disk(monkeypatch, 10 * MIB)
    core = build_core(load_settings(write_config(tmp_path, api={"token": OPERATOR})), SystemClock())
    try:
        async with service(core, separate=False) as client:
            status, answer = await post(client, recent("R-1"), OP)
            assert (status, answer["error"]["code"]) == (507, "storage_low"), answer
            assert "10 MiB free" in answer["error"]["message"]
            status, health = await get(client, "/health", OP)
            assert (status, health["reason"]) == (503, "storage_low")
            banner = re.search(r'<p id="service-problem"[^>]*>(.*?)</p>', await page(client))
            assert banner is not None, "the operator's dashboard says nothing of it"
            assert "degraded (storage_low)" in banner[1] and "10 MiB free" in banner[1]
            disk.free = 300 * MIB
            status, health = await get(client, "/health", OP)
            assert (status, health) == (200, {"status": "ok"})
            assert 'id="service-problem"' not in await page(client)
            status, answer = await post(client, recent("R-1"), OP)
            assert status == 201, answer
    finally:
        core.close()


async def test_health_says_storage_low_from_the_start_before_any_event_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A service started on a disk already below the space kept said `ok`, with no banner,
    until a platform's event was refused: the operator learnt it from the platform."""
    Disk(monkeypatch, 10 * MIB)
    core = build_core(load_settings(write_config(tmp_path, api={"token": OPERATOR})), SystemClock())
    try:
        async with service(core, separate=False) as client:
            status, health = await get(client, "/health", OP)
            assert (status, health["reason"]) == (503, "storage_low"), health
            assert "10 MiB free" in health["message"]
            status, health = await get(client, "/health", {})
            assert (status, health["reason"]) == (503, "storage_low")
            assert "MiB" not in health["message"], "a platform gets no figures"
            assert 'id="service-problem"' in await page(client)
    finally:
        core.close()


def test_the_service_writes_its_batch_files_while_it_refuses_events(tmp_path: Path) -> None:
    """`accrochage run`, its writer a process of its own, the disk below the space kept: the
    events stored before are cut and written by the timer; new ones are refused."""
    config = write_config(tmp_path)
    run(config, "ingest", str(write_jsonl(tmp_path / "before.jsonl", [recent("T-1")])))
    port = free_port()
    low = write_config(
        tmp_path,
        api={"bind": f"127.0.0.1:{port}"},
        batching={"tick": "1s", "max_delay": "1s"},
        state={"keep_free_bytes": BEYOND},
    )
    log = (tmp_path / "service.log").open("wb")
    service = subprocess.Popen(
        [sys.executable, "-m", "accrochage", "--config", str(low), "run"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"

    async def exercise() -> tuple[int, Any]:
        await wait_healthy(base, service, degraded="storage_low")
        async with (
            aiohttp.ClientSession(base_url=base) as client,
            client.post("/events", json=recent("T-2")) as response,
        ):
            answered = response.status, await response.json()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ANSWER_WITHIN
        while not xml_files(tmp_path / "var" / "outbox") and loop.time() < deadline:
            await asyncio.sleep(0.2)
        return answered

    try:
        status, answer = asyncio.run(exercise())
    finally:
        service.terminate()
        service.wait(60)
    said = (tmp_path / "service.log").read_text()
    assert (status, answer["error"]["code"]) == (507, "storage_low"), said
    files = xml_files(tmp_path / "var" / "outbox")
    assert len(files) == 1, said
    assert b"T-1" in files[0].read_bytes() and b"T-2" not in files[0].read_bytes()


# -- a log's groups (the Kafka worker) ----------------------------------------------------------


@pytest.fixture()
def log_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Core, WriterService, Disk]]:
    monkeypatch.setattr(writer_module, "ROOM_RECHECK_SECONDS", 0.05)
    disk = Disk(monkeypatch, 10 * MIB)
    core = build_core(load_settings(write_config(tmp_path, state={"keep_free_bytes": 256 * MIB})))
    service = WriterService(core.ingestor)
    try:
        yield core, service, disk
    finally:
        service.stop(60)
        core.close()


def log_group(first: int, count: int) -> list[Incoming]:
    return [
        Incoming(json.dumps(recent(f"Q-{n}")).encode(), "events", 0, n, b"pix")
        for n in range(first, first + count)
    ]


SOURCE = LogSource("events")


def test_a_logs_group_waits_for_room_and_is_stored_once_there_is(
    log_writer: tuple[Core, WriterService, Disk],
) -> None:
    core, service, disk = log_writer
    stored = service.submit(log_group(0, 3), SOURCE)
    assert disk.asked_again.wait(ANSWER_WITHIN), "the group did not look at the disk again"
    assert not stored.done(), "a log's group failed for want of room: the worker would stop"
    assert isinstance(service.storage_error, StorageLowError)
    assert core.store.offsets("events") == {}
    disk.free = 300 * MIB
    results = stored.result(ANSWER_WITHIN)
    assert [r.outcome.value for r in results] == ["created"] * 3
    assert core.store.offsets("events") == {0: 3}
    assert service.storage_error is None


def test_a_stop_ends_the_wait_and_the_log_is_read_again_later(
    log_writer: tuple[Core, WriterService, Disk],
) -> None:
    core, service, disk = log_writer
    first = service.submit(log_group(0, 2), SOURCE)
    assert disk.asked_again.wait(ANSWER_WITHIN)
    later = service.submit(log_group(2, 2), SOURCE)
    service.abandon_waits()
    with pytest.raises(StorageLowError):
        first.result(ANSWER_WITHIN)
    with pytest.raises(RuntimeError, match="earlier group of this log was not stored"):
        later.result(ANSWER_WITHIN)
    assert core.store.offsets("events") == {}
    with core.store.reading() as reader:
        assert reader.record_holders([f"Q-{n}" for n in range(4)]) == {}


# -- doctor ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("free", "level", "code"),
    [(10 * MIB, "error", 1), (300 * MIB, "warning", 1), (600 * MIB, "ok", None)],
)
def test_doctor_tells_how_close_the_disk_is_to_refusing_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, free: int, level: str, code: int | None
) -> None:
    config = with_state(tmp_path, state={"keep_free_bytes": 256 * MIB})
    Disk(monkeypatch, free)
    result = doctor(config, "--format", "json")
    shown = json.loads(result.stdout)
    [room] = findings(shown, "room")
    assert room["level"] == level, room
    assert room["message"].startswith(f"the state's disk has {free // MIB} MiB free")
    assert "state.keep_free_bytes (256 MiB" in room["message"]
    if code is not None:
        assert result.exit_code == code and room["needs_operator"]
    else:
        assert not room["needs_operator"]


def test_a_server_errors_lines_are_one_per_code_every_few_seconds() -> None:
    now = [0.0]
    lines = LinesEvery(SERVER_ERRORS_LOGGED_EVERY, lambda: now[0])
    assert lines.due("storage_low") == 1
    assert [lines.due("storage_low") for _ in range(3)] == [None, None, None]
    assert lines.due("state_busy") == 1, "each code has its own line"
    now[0] += SERVER_ERRORS_LOGGED_EVERY
    assert lines.due("storage_low") == 4, "the line counts the answers it stands for"
    now[0] += SERVER_ERRORS_LOGGED_EVERY
    assert lines.due("storage_low") == 1


def test_a_waiting_group_decoded_ahead_keeps_one_key_warning_per_event(
    log_writer: tuple[Core, WriterService, Disk],
) -> None:
    """A group decoded in the decode processes is the same objects at each try: its key
    warning was added at each look at the disk, and the record stored with one per try."""
    core, service, disk = log_writer
    raw = json.dumps(recent("Q-K")).encode()
    decoded = core.ingestor._decode(Incoming(raw, "events", 0, 0, b"not-pix"))
    stored = service.submit([Incoming(raw, "events", 0, 0, b"not-pix", decoded)], SOURCE)
    assert disk.asked_again.wait(ANSWER_WITHIN)
    disk.free = 300 * MIB
    [result] = stored.result(ANSWER_WITHIN)
    assert [w.field for w in result.warnings].count("kafka.key") == 1, result.warnings
    with core.store.transaction() as tx:
        [record] = tx.records(["Q-K"]).values()
    assert [w.field for w in record.warnings].count("kafka.key") == 1


def test_a_group_stored_one_by_one_is_not_cut_short_by_the_disk_crossing_the_line(
    log_writer: tuple[Core, WriterService, Disk], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A log's group failing for another reason than the storage is stored one event at a
    time; it passed its room check: the disk crossing the line meanwhile failed it with
    `storage_low`, and the Kafka worker exited 70 instead of waiting."""
    core, service, disk = log_writer
    disk.free = 300 * MIB
    ingestor = core.ingestor
    group_store = ingestor._store

    def failing_whole(tx: Any, items: Any, decoded: Any) -> Any:
        if len(items) > 1:
            disk.free = 10 * MIB  # the disk crosses the line as the group fails
            raise RuntimeError("a group's fault, not an event's")
        return group_store(tx, items, decoded)

    monkeypatch.setattr(ingestor, "_store", failing_whole)
    results = service.submit(log_group(0, 3), SOURCE).result(ANSWER_WITHIN)
    assert [r.outcome.value for r in results] == ["created"] * 3
    assert core.store.offsets("events") == {0: 3}


async def test_below_twice_the_space_kept_only_valid_events_are_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """One platform's junk (a loop of malformed events, another certifier's record ids) is
    kept for the operator, and took the room every platform's valid events needed until all
    were refused alike. Below twice the space kept, what would store errors is refused (507,
    its errors said, nothing stored) and valid events are stored."""
    disk = Disk(monkeypatch, 300 * MIB)
    settings = load_settings(
        write_config(tmp_path, api=SCOPED_API, state={"keep_free_bytes": 256 * MIB})
    )
    core = build_core(settings, SystemClock())
    try:
        async with service(core, separate=False) as client:
            status, answer = await post(client, recent("V-1"), PIX)
            assert status == 201, answer
            status, answer = await post(client, recent("V-1"), PIX)
            assert status == 200 and answer["outcome"] == "unchanged"
            invalid = recent("V-2", holder=None)
            junk = {"type": "certification.delivered", "record_id": 7}
            taken = recent("V-1", certifier="school")
            for sent, field in ((invalid, "holder"), (junk, "record_id")):
                status, answer = await post(client, sent, PIX)
                assert (status, answer["error"]["code"]) == (507, "storage_low"), answer
                assert "keeps only valid events" in answer["error"]["message"]
                fields = [d["field"] for d in answer["error"]["details"]]
                assert any(f.startswith(field) for f in fields), ("what to fix is said", fields)
                assert "MiB" not in json.dumps(answer), "the operator's details, to a platform"
            status, answers = await post(client, [recent("V-3"), junk, taken, recent("V-4")], OP)
            assert status == 200
            assert [a["http_status"] for a in answers] == [201, 507, 507, 201], answers
            status, answer = await post(client, recent("V-5", certifier="school"), PIX)
            assert (status, answer["outcome"]) == (403, "forbidden"), "what the sender must know"
            status, unusable = await get(client, "/unusable", OP)
            assert unusable["events"] == [], "nothing of them was stored"
            status, listed = await get(client, "/records?status=invalid", OP)
            assert listed["records"] == []

            disk.free = 600 * MIB
            status, answer = await post(client, junk, PIX)
            assert status == 422 and answer["outcome"] == "unusable", answer
    finally:
        core.close()
    rows = outstanding_json(settings_path(tmp_path))
    assert sorted(r["record_id"] for r in rows) == ["V-1", "V-3", "V-4"]
    said = [r.getMessage() for r in caplog.records if "not stored" in r.getMessage()]
    assert said and "less than twice state.keep_free_bytes" in said[0], said
    assert len(said) == 1, "one line every few seconds, not one a group"


def settings_path(folder: Path) -> Path:
    return folder / "accrochage.toml"


def test_ingest_below_twice_the_space_kept_stores_the_valid_events_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An event not stored was counted `unusable: kept in the unusable log`, and the command
    exited 0: the operator had no reason to ingest the file again."""
    Disk(monkeypatch, 300 * MIB)
    config = write_config(tmp_path, state={"keep_free_bytes": 256 * MIB})
    events = [recent("C-1"), '{"record_id": "C-2"', recent("C-3", holder=None), recent("C-4")]
    result = run(config, "ingest", str(write_jsonl(tmp_path / "in.jsonl", events)), code=1)
    assert "  unusable: 0 " in result.stdout and "  invalid:  0 " in result.stdout
    assert "  NOT STORED: 2 (nothing of them is in the state" in result.stdout
    assert "  accepted: 2 " in result.stdout, "the events not stored are not counted accepted"
    assert "in.jsonl:3 C-3 holder:" in result.stdout, "what to fix, by line"
    assert [r["record_id"] for r in outstanding_json(config)] == ["C-1", "C-4"]
    assert json.loads(run(config, "unusable", "--format", "json").stdout) == []


def test_a_group_stored_one_by_one_still_refuses_invalid_events_for_room(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A group failing for another reason than the storage is stored one event at a time
    (`ingest_each`): its invalid events were stored then, whatever the room."""
    Disk(monkeypatch, 300 * MIB)
    settings = load_settings(write_config(tmp_path, state={"keep_free_bytes": 256 * MIB}))
    core = build_core(settings, SystemClock())
    try:
        ingestor = core.ingestor
        group_store = ingestor._store

        def failing_whole(tx: Any, items: Any, decoded: Any, **options: Any) -> Any:
            if len(items) > 1:
                raise RuntimeError("a group's fault, not an event's")
            return group_store(tx, items, decoded, **options)

        monkeypatch.setattr(ingestor, "_store", failing_whole)
        items = [Incoming(json.dumps(recent("F-1"))), Incoming('{"record_id": "F-2"')]
        with pytest.raises(RuntimeError):
            ingestor.ingest(items)
        assert [r.http_status for r in ingestor.ingest_each(items)] == [201, 507]
    finally:
        core.close()
    assert [r["record_id"] for r in outstanding_json(settings_path(tmp_path))] == ["F-1"]


def test_an_invalid_event_already_stored_is_answered_as_before_below_twice_the_space_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same invalid event again stores nothing more: a platform's retry of one stored
    before the disk got short is answered as the first time (422), not 507 (its errors,
    "nothing stored"), which read as a record the state does not hold."""
    disk = Disk(monkeypatch, 600 * MIB)
    settings = load_settings(write_config(tmp_path, state={"keep_free_bytes": 256 * MIB}))
    core = build_core(settings, SystemClock())
    try:
        invalid = [Incoming(json.dumps(recent("A-1", holder=None)))]
        [first] = core.ingestor.ingest(invalid)
        assert first.http_status == 422 and first.errors, first
        disk.free = 300 * MIB
        [again] = core.ingestor.ingest(invalid)
        assert again.http_status == 422 and again.outcome.value == "unchanged", again
        [other] = core.ingestor.ingest([Incoming(json.dumps(recent("A-2", holder=None)))])
        assert other.http_status == 507, "a new invalid event is still refused for room"
    finally:
        core.close()


def test_the_operator_s_line_counts_every_event_refused_for_room(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """One line every few seconds says how many invalid events were not stored since the
    last: the events, not the groups they came in."""
    Disk(monkeypatch, 300 * MIB)
    settings = load_settings(write_config(tmp_path, state={"keep_free_bytes": 256 * MIB}))
    core = build_core(settings, SystemClock())
    now = [0.0]
    lines = core.ingestor._refused_for_room  # the test sets its clock
    lines._lines = LinesEvery(lines.EVERY, lambda: now[0])

    def bad(*ids: str) -> list[Incoming]:
        return [Incoming(json.dumps(recent(i, holder=None))) for i in ids]

    try:
        with caplog.at_level(logging.WARNING, logger="accrochage.ingest"):
            core.ingestor.ingest([*bad("R-1", "R-2"), Incoming(json.dumps(recent("R-3")))])
            core.ingestor.ingest(bad("R-4"))
            now[0] = lines.EVERY
            core.ingestor.ingest(bad("R-5", "R-6"))
    finally:
        core.close()
    said = [r.getMessage() for r in caplog.records if "not stored" in r.getMessage()]
    assert [line.split(":")[0] for line in said] == [
        "2 invalid or unusable event(s) not stored",
        "3 invalid or unusable event(s) not stored",
    ], said
