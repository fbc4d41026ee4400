"""Reference data in the state (staging, swap, version), its commands, and a running service
that picks new reference data up without a restart."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
import sqlite3
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from click.testing import CliRunner

from accrochage.api.protocol import ApiRunner
from accrochage.app import build_core
from accrochage.cli import main
from accrochage.errors import RefdataBusy, RefdataError
from accrochage.models.deadline import PARIS, FixedClock, SystemClock, paris_today
from accrochage.refdata.france_competences import load_export
from accrochage.refdata.load import LoadReport, load_refdata
from accrochage.refdata.memory import ReferenceHolder
from accrochage.runtimes.embedded import build_service
from accrochage.settings import load_settings
from accrochage.state.base import RefdataStorage
from accrochage.state.sqlite import SqliteStore
from accrochage.streams.reference import ReferenceKeeper
from tests.factories import delivered_event
from tests.refdata_files import (
    UNIDENTIFIED_ROW,
    cog_folder,
    csv_export,
    csv_part,
    fc,
    refdata_dir,
)

__all__ = ["refdata_dir"]

RECENT = (paris_today(SystemClock()) - timedelta(days=10)).isoformat()
WAIT = 30.0
"""Seconds a test waits at most for the service to pick new data up."""


def xml_folder(refdata_dir: Path, target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for kind in ("RNCP", "RS"):
        name = f"export_fiches_{kind}_V4_1_2026-08-16.xml"
        shutil.copyfile(fc(refdata_dir) / name, target / name)
    return target


def write_config(directory: Path, refdata: dict[str, Any] | None = None) -> Path:
    lines = [
        "[emitter]",
        'id_client = "03VML243"',
        "[[certifiers]]",
        'key = "pix"',
        'id_client = "03VML243"',
        'id_contrat = "MCFCER000209"',
        'certifications = ["RS6604", "RS5000", "RS6117", "RNCP39568"]',
        'siret = "\\t79279132900016"',
        "[batching]",
        'tick = "1s"',
        "render_processes = 0",
        "[paths]",
        f'state = "{directory / "var" / "state.db"}"',
        f'outbox = "{directory / "var" / "outbox"}"',
    ]
    if refdata:
        lines.append("[refdata]")
        lines += [f'{key} = "{value}"' for key, value in refdata.items()]
    path = directory / "accrochage.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def event(record_id: str, code: str) -> dict[str, Any]:
    return delivered_event(
        record_id=record_id,
        event_id=f"ev-{record_id}",
        certification={"type": "RS", "code": code},
        delivered_on=RECENT,
        exam=None,
    )


# -- the state ---------------------------------------------------------------------------------


def test_staging_is_invisible_until_the_swap(refdata_dir: Path, tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    other = SqliteStore(tmp_path / "state.db")  # another process's view of the same state
    try:
        storage = store.refdata()
        assert storage.version() == 0 and storage.sources() == []
        load_refdata(storage, csv_export(tmp_path / "csv"), None)
        assert storage.version() == 1
        holder = ReferenceHolder(other.refdata())
        current = holder.current()
        assert current is not None and current.fiche("RS6604") is None
        # New rows staged: the live tables, the version and the other process see nothing yet.
        export = load_export(xml_folder(refdata_dir, tmp_path / "xml"))
        storage.stage("rncp")
        storage.stage_fiches(export.fiches)
        assert {f.code for f in storage.fiches()} == {
            f.code for f in load_export(csv_export(tmp_path / "csv")).fiches
        }
        assert not holder.refresh()
        # Then the swap: one version more, picked up by the other process.
        load_refdata(storage, xml_folder(refdata_dir, tmp_path / "xml"), None)
        assert storage.version() == 2
        assert holder.refresh()
        current = holder.current()
        assert current is not None and current.fiche("RS6604") is not None
        [source] = storage.sources()
        assert source.kind == "rncp" and str(source.day) == "2026-08-16"
        assert source.files == (
            "export_fiches_RNCP_V4_1_2026-08-16.xml",
            "export_fiches_RS_V4_1_2026-08-16.xml",
        )
    finally:
        other.close()
        store.close()


def test_one_load_at_a_time_and_the_second_sees_the_first(
    refdata_dir: Path, tmp_path: Path
) -> None:
    """Two loads filled the same staging tables: one swapped in a mix of both (a third of the
    fiches gone, `refdata status` still counting them all), the other failed. Loads now take
    turns, and a load that waited finds the same files loaded and leaves them."""
    store = SqliteStore(tmp_path / "state.db")
    other = SqliteStore(tmp_path / "state.db")  # another process
    folder = xml_folder(refdata_dir, tmp_path / "xml")
    expected = {f.code for f in load_export(folder).fiches}
    done: list[LoadReport] = []

    def load_in_turn(storage: RefdataStorage) -> threading.Thread:
        thread = threading.Thread(
            target=lambda: done.append(load_refdata(storage, folder, None, wait_seconds=60))
        )
        thread.start()
        return thread

    try:
        storage = store.refdata()
        with other.refdata().loading(0):
            with pytest.raises(RefdataBusy, match="another process is loading reference data"):
                load_refdata(storage, folder, None, wait_seconds=0)
            assert storage.version() == 0, "nothing staged nor swapped meanwhile"
            waiting = load_in_turn(storage)
            waiting.join(0.5)
            assert waiting.is_alive() and not done, "it waits for its turn"
        waiting.join(60)
        assert not waiting.is_alive()
        load_in_turn(other.refdata()).join(60)
        assert [[item.changed for item in report.loaded] for report in done] == [[True], [False]]
        assert {f.code for f in storage.fiches()} == expected
        assert storage.version() == 1
    finally:
        other.close()
        store.close()


def test_a_service_finding_another_load_under_way_looks_again_later(
    refdata_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SqliteStore(tmp_path / "state.db")
    folder = xml_folder(refdata_dir, tmp_path / "xml")
    holder = ReferenceHolder(store.refdata())
    keeper = ReferenceKeeper(
        store.refdata(), holder, folder, None, timedelta(days=400), SystemClock()
    )
    try:
        with store.refdata().loading(0), caplog.at_level(logging.INFO):
            keeper.run()
            assert store.refdata().version() == 0
        assert [r.levelname for r in caplog.records] == ["INFO"], "not an error: a turn"
        assert "another process is loading reference data" in caplog.records[0].getMessage()
        keeper.run()
        assert store.refdata().version() == 1
        current = holder.current()
        assert current is not None and current.fiche("RS6604") is not None
    finally:
        store.close()


def test_a_service_says_once_a_day_that_its_reference_data_is_too_old(
    refdata_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The export's age was logged only when its files changed: an export a year old decided
    which events were invalid while a running service said nothing about it."""
    store = SqliteStore(tmp_path / "state.db")
    folder = xml_folder(refdata_dir, tmp_path / "xml")
    clock = FixedClock(datetime(2030, 3, 1, 9, 0, tzinfo=PARIS))
    keeper = ReferenceKeeper(
        store.refdata(), ReferenceHolder(store.refdata()), folder, None, timedelta(days=30), clock
    )

    def said() -> list[str]:
        told = [r.getMessage() for r in caplog.records if "days old" in r.getMessage()]
        caplog.clear()
        return told

    try:
        with caplog.at_level(logging.INFO):
            keeper.run()
            (first,) = said()
            assert "refdata.max_age is 30d" in first and "said once a day" in first
            keeper.run()
            clock.advance(timedelta(hours=10))
            keeper.run()
            assert said() == [], "once a day"
            clock.advance(timedelta(hours=5))  # the next day in Paris
            keeper.run()
            assert len(said()) == 1
    finally:
        store.close()


def test_a_service_reads_a_refused_export_again_only_once_it_changes(
    refdata_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A damaged file was parsed again at every tick (the RNCP XML export, 1.3 s each
    `batching.tick`, 5 s) for as long as it stayed there, though only its change can make
    it load."""
    store = SqliteStore(tmp_path / "state.db")
    folder = tmp_path / "xml"
    folder.mkdir()
    name = "export_fiches_RS_V4_1_2026-08-16.xml"
    (folder / name).write_text("<FICHES><FICHE>", encoding="utf-8")
    loads: list[Path | None] = []

    def counted(storage: RefdataStorage, rncp: Path | None, *args: Any, **kw: Any) -> Any:
        loads.append(rncp)
        return load_refdata(storage, rncp, *args, **kw)

    monkeypatch.setattr("accrochage.streams.reference.load_refdata", counted)
    holder = ReferenceHolder(store.refdata())
    keeper = ReferenceKeeper(
        store.refdata(), holder, folder, None, timedelta(days=4000), SystemClock()
    )
    try:
        keeper.run()
        keeper.run()
        keeper.run()
        assert len(loads) == 1, "the same damaged files: not parsed again"
        assert store.refdata().version() == 0
        shutil.copyfile(fc(refdata_dir) / name, folder / name)  # the download done again
        keeper.run()
        assert len(loads) == 2 and store.refdata().version() == 1
        current = holder.current()
        assert current is not None and current.fiche("RS6604") is not None
    finally:
        store.close()


def test_a_service_reads_a_file_it_could_not_read_again_once_it_is_made_readable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file this user may not read is refused ("cannot read ...: Permission denied"); the
    operator's `chmod` changes neither its size nor its modification time, and the service
    kept the old data until it restarted. (The tests run as root, who reads any file: the
    permission is looked at as the service's user would meet it.)"""
    store = SqliteStore(tmp_path / "state.db")
    folder = cog_folder(tmp_path / "cog")
    history = folder / "v_commune_depuis_1943.csv"
    history.chmod(0o600)
    opened = Path.open

    def as_another_user(path: Path, *args: Any, **kw: Any) -> Any:
        if path == history and not path.stat().st_mode & 0o004:
            raise PermissionError(13, "Permission denied", str(path))
        return opened(path, *args, **kw)

    monkeypatch.setattr(Path, "open", as_another_user)
    holder = ReferenceHolder(store.refdata())
    keeper = ReferenceKeeper(
        store.refdata(), holder, None, folder, timedelta(days=4000), SystemClock()
    )
    try:
        keeper.run()
        assert store.refdata().version() == 0, "unreadable: nothing loaded"
        history.chmod(0o644)  # the operator's fix, the file itself unchanged
        keeper.run()
        assert store.refdata().version() == 1
    finally:
        store.close()


def test_an_upgraded_state_reads_the_certifiers_states_at_its_next_load(
    refdata_dir: Path, tmp_path: Path
) -> None:
    """m100 adds the certifiers' states; the export loaded before is read again by the next
    load, although its files did not change."""
    folder = xml_folder(refdata_dir, tmp_path / "xml")
    store = SqliteStore(tmp_path / "state.db")
    load_refdata(store.refdata(), folder, None)
    store.close()
    with sqlite3.connect(tmp_path / "state.db") as conn:  # the state as an earlier version left it
        conn.execute("ALTER TABLE refdata_certifiers DROP COLUMN inactive")
        conn.execute("ALTER TABLE refdata_certifiers DROP COLUMN inactive_since")
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm100_inactive_certifiers'")
    conn.close()
    store = SqliteStore(tmp_path / "state.db")
    try:
        fiches = {f.code: f for f in store.refdata().fiches()}
        assert fiches["RS6232"].inactive == (), "as before, until the export is read again"
        (loaded,) = load_refdata(store.refdata(), folder, None).loaded
        assert loaded.changed, "read again, its files unchanged"
        fiches = {f.code: f for f in store.refdata().fiches()}
        assert [siret for siret, _ in fiches["RS6232"].inactive] == [
            "84210466300013",
            "84210466300039",
        ]
        (again,) = load_refdata(store.refdata(), folder, None).loaded
        assert not again.changed
    finally:
        store.close()


def test_an_export_cut_short_is_refused_and_the_loaded_one_stays(
    refdata_dir: Path, tmp_path: Path
) -> None:
    """A Standard file cut at a line's end (a copy still under way) read as a valid, smaller
    export: every code it lost was refused as unknown until the next load."""
    store = SqliteStore(tmp_path / "state.db")
    try:
        storage = store.refdata()
        load_refdata(storage, csv_export(tmp_path / "whole"), None)
        loaded = {f.code for f in storage.fiches()}
        standard = csv_part(refdata_dir, "Standard").splitlines(keepends=True)
        cut = csv_export(tmp_path / "cut", parts={"Standard": b"".join(standard[:4])})
        with pytest.raises(
            RefdataError, match=f"lists 3 fiches where the data loaded lists {len(loaded)}"
        ):
            load_refdata(storage, cut, None)
        assert {f.code for f in storage.fiches()} == loaded and storage.version() == 1
        load_refdata(storage, cut, None, force=True)  # the operator's word: it is whole
        assert len(list(storage.fiches())) == 3 and storage.version() == 2
    finally:
        store.close()


def test_a_cog_file_cut_inside_its_last_line_is_refused_and_the_loaded_one_stays(
    tmp_path: Path,
) -> None:
    """Cut after `"1943-01-01","`, the commune history kept more than half of its communes
    and loaded, its last commune read as still current (its DATE_FIN cut off)."""
    store = SqliteStore(tmp_path / "state.db")
    try:
        storage = store.refdata()
        whole = cog_folder(tmp_path / "whole")
        load_refdata(storage, None, whole)
        periods = sorted((code, p.start, p.end) for code, p in storage.communes())
        history = (whole / "v_commune_depuis_1943.csv").read_text(encoding="utf-8")
        line = '"COM","2A215","0","PIANOTOLLI CALDARELLO","Pianotolli-Caldarello",'
        at = history.index(line)
        cut = history[: history.index('"2001-01-01"', at)]
        assert cut.endswith('"1976-01-01",')
        for end in ('"', '"20'):
            folder = cog_folder(tmp_path / f"cut{len(end)}")
            (folder / "v_commune_depuis_1943.csv").write_text(cut + end, encoding="utf-8")
            with pytest.raises(RefdataError, match="ends inside a quoted value of its last line"):
                load_refdata(storage, None, folder)
        folder = cog_folder(tmp_path / "cut0")  # right after the separator: DATE_FIN empty
        (folder / "v_commune_depuis_1943.csv").write_text(cut, encoding="utf-8")
        with pytest.raises(RefdataError, match="ends with a separator and no line break"):
            load_refdata(storage, None, folder)
        assert sorted((code, p.start, p.end) for code, p in storage.communes()) == periods
        assert storage.version() == 1
    finally:
        store.close()


def test_load_with_cog_only_loads_the_cog(refdata_dir: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path, {"rncp": tmp_path / "not-there.zip"})
    result = run(config, "refdata", "load", "--cog", str(cog_folder(tmp_path / "cog")))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("cog: loaded")
    assert "rncp" not in result.output


def test_a_snapshot_never_mixes_two_loads(refdata_dir: Path, tmp_path: Path) -> None:
    """`read_reference` read the version, the sources and each table on connections of their
    own: a swap between two reads gave one tick a mix of two loads."""
    store = SqliteStore(tmp_path / "state.db")
    other = SqliteStore(tmp_path / "state.db")
    try:
        csv = csv_export(tmp_path / "csv")
        load_refdata(store.refdata(), csv, None)
        before = {f.code for f in load_export(csv).fiches}
        with store.refdata().snapshot() as snapshot:
            assert snapshot.version() == 1
            load_refdata(other.refdata(), xml_folder(refdata_dir, tmp_path / "xml"), None)
            assert {f.code for f in snapshot.fiches()} == before
            (source,) = snapshot.sources()
            assert source.files[0].startswith("export-fiches-csv")
        assert store.refdata().version() == 2
        assert {f.code for f in store.refdata().fiches()} != before
    finally:
        other.close()
        store.close()


def test_a_certifier_without_siret_survives_the_state(refdata_dir: Path, tmp_path: Path) -> None:
    """What the export says of certifiers without a SIRET is stored and read back as loaded."""
    certifiers = csv_part(refdata_dir, "Certificateurs") + UNIDENTIFIED_ROW.encode()
    export = csv_export(tmp_path / "csv", parts={"Certificateurs": certifiers})
    store = SqliteStore(tmp_path / "state.db")
    try:
        storage = store.refdata()
        load_refdata(storage, export, None)
        stored = {f.code: f for f in storage.fiches()}
        assert stored == {f.code: f for f in load_export(export).fiches}
        assert stored["RS5000"].unidentified_certifiers
        assert stored["RS5000"].sirets == {"79279132900016"}
        current = ReferenceHolder(store.refdata()).current()
        assert current is not None
        fiche = current.fiche("RS5000")
        assert fiche is not None and fiche.unidentified_certifiers
    finally:
        store.close()


def test_a_file_that_cannot_be_read_keeps_the_data_loaded(
    refdata_dir: Path, tmp_path: Path
) -> None:
    store = SqliteStore(tmp_path / "state.db")
    try:
        storage = store.refdata()
        load_refdata(storage, csv_export(tmp_path / "csv"), None)
        broken = tmp_path / "broken"
        broken.mkdir()
        (broken / "export_fiches_RS_V4_1_2026-08-16.xml").write_text("<FICHES><FICHE>")
        try:
            load_refdata(storage, broken, None)
        except RefdataError as exc:
            assert "export_fiches_RS_V4_1_2026-08-16.xml" in str(exc)
        else:
            raise AssertionError("a damaged file was loaded")
        assert storage.version() == 1
        assert any(f.code == "RS5000" for f in storage.fiches())
    finally:
        store.close()


def test_a_process_without_a_scheduler_follows_the_version(
    refdata_dir: Path, tmp_path: Path
) -> None:
    """The Kafka writer process: `current()` itself looks at the stored version."""
    store = SqliteStore(tmp_path / "state.db")
    other = SqliteStore(tmp_path / "state.db")
    try:
        holder = ReferenceHolder(other.refdata(), check_every=0)
        assert holder.current() is None
        load_refdata(store.refdata(), xml_folder(refdata_dir, tmp_path / "xml"), None)
        current = holder.current()
        assert current is not None and current.fiche("RS6604") is not None
        assert holder.version == 1
    finally:
        other.close()
        store.close()


# -- the commands ------------------------------------------------------------------------------


def run(config: Path, *args: str) -> Any:
    return CliRunner().invoke(main, ["--config", str(config), *args], catch_exceptions=False)


def test_load_status_and_revalidate(refdata_dir: Path, tmp_path: Path) -> None:
    csv = csv_export(tmp_path / "csv")
    config = write_config(tmp_path, {"rncp": csv})
    events = tmp_path / "events.jsonl"
    events.write_text(
        "\n".join(json.dumps(event(rid, code)) for rid, code in (("A", "RS6604"), ("B", "RS6117")))
        + "\n",
        encoding="utf-8",
    )
    assert run(config, "ingest", str(events)).exit_code == 0  # no reference data yet
    result = run(config, "refdata", "status")
    assert "no reference data loaded" in result.output

    result = run(config, "refdata", "load")
    assert result.exit_code == 0, result.output
    assert "rncp: loaded" in result.output and "9 fiches" in result.output
    assert "days old" in result.output  # a 2024 export is older than refdata.max_age
    status = json.loads(run(config, "refdata", "status", "--format", "json").output)
    assert status["version"] == 1
    assert status["sources"][0]["date"] == "2024-02-22"
    applied = {rule["rule"]: rule["applied"] for rule in status["rules"]}
    assert applied["the code is not in the RNCP/RS export"]
    assert not applied["delivered_on after DATE_LIMITE_DELIVRANCE"]  # CSV: no such column
    assert not applied["a foreign-country code unknown to the COG"]
    assert run(config, "refdata", "load").output.startswith("rncp: unchanged")
    shown = run(config, "refdata", "status").output
    assert re.search(r"loaded \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0[12]:00", shown), (
        "Paris time, as every other command shows an instant"
    )

    result = run(config, "revalidate")
    assert result.exit_code == 0, result.output
    # RS6604 is not in the 2024 export: A becomes invalid; RS6117 (known, SIRET among its
    # certifiers? no: 79279132900016 is not) gets a warning.
    assert "A (pix): pending -> invalid" in result.output
    assert "+ error certification.code: RS6604 is not in" in result.output
    assert "B (pix): pending -> pending" in result.output
    assert "+ warning certifier:" in result.output
    records = json.loads(run(config, "outstanding", "--format", "json").output)
    by_id = {r["record_id"]: r for r in records}
    assert by_id["A"]["status"] == "invalid"
    assert [e["field"] for e in by_id["A"]["errors"]] == ["certification.code"]
    # RS6117's registration ended on 2025-09-29: a warning too.
    assert [w["field"] for w in by_id["B"]["warnings"]] == ["delivered_on", "certifier"]

    # `check` answers as ingest would, reference rules included; `summary` says the data is old.
    probe = tmp_path / "probe.jsonl"
    probe.write_text(json.dumps(event("C", "RS6604")) + "\n", encoding="utf-8")
    checked = run(config, "check", str(probe))
    assert checked.exit_code == 1 and "certification.code: RS6604 is not in" in checked.output
    table = run(config, "summary").output
    assert "warning: " in table and "days old" in table
    listed = json.loads(run(config, "summary", "--format", "json").output)["refdata_warnings"]
    assert listed and "days old" in listed[0]

    assert "invalid:  1" in run(config, "ingest", str(probe)).output, "C is stored invalid"

    # The XML export knows RS6604: A is pending again, and C, never valid before, too.
    config = write_config(tmp_path, {"rncp": xml_folder(refdata_dir, tmp_path / "xml")})
    assert run(config, "refdata", "load").exit_code == 0
    result = run(config, "revalidate", "--certifier", "pix")
    assert "A (pix): invalid -> pending" in result.output
    assert "C (pix): invalid -> pending" in result.output
    assert "0 changed" in run(config, "revalidate").output
    # C had no passage size (an invalid record has none): the batch cut failed on it.
    flushed = run(config, "flush", "--force")
    assert flushed.exit_code == 0 and "wrote " in flushed.output, flushed.output


def test_load_without_configuration_is_a_usage_error(tmp_path: Path) -> None:
    result = run(write_config(tmp_path), "refdata", "load")
    assert result.exit_code == 2 and "refdata.rncp" in result.output


def test_a_configured_path_that_does_not_exist_is_a_configuration_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "export.zip"
    result = run(write_config(tmp_path, {"rncp": missing}), "refdata", "load")
    assert result.exit_code == 2, result.output
    assert f"{missing} does not exist: check refdata.rncp" in result.output
    result = run(write_config(tmp_path), "refdata", "load", "--cog", str(missing))
    assert result.exit_code == 2 and "check refdata.cog (or --cog)" in result.output


# -- a running service --------------------------------------------------------------------------


async def _post(client: aiohttp.ClientSession, body: dict[str, Any]) -> tuple[int, Any]:
    async with client.post("/events", json=body) as response:
        return response.status, await response.json()


async def _until(client: aiohttp.ClientSession, code: str, status: int, prefix: str) -> Any:
    """Post new events until one is answered `status` (bounded)."""
    deadline = asyncio.get_running_loop().time() + WAIT
    attempt = 0
    while True:
        attempt += 1
        got, body = await _post(client, event(f"{prefix}-{attempt}", code))
        if got == status:
            return body
        assert asyncio.get_running_loop().time() < deadline, f"still {got}: {body}"
        await asyncio.sleep(0.2)


def test_the_service_reloads_without_a_restart(refdata_dir: Path, tmp_path: Path) -> None:
    rncp = tmp_path / "rncp"
    csv_export(rncp)
    config = write_config(tmp_path, {"rncp": rncp, "cog": cog_folder(tmp_path / "cog")})
    core = build_core(load_settings(config))

    async def scenario() -> None:
        runner = ApiRunner(build_service(core, timer=True))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as client:
                # Loaded at start: RS6604 is not in the 2024 CSV export.
                body = await _until(client, "RS6604", 422, "before")
                assert [e["field"] for e in body["errors"]] == ["certification.code"]
                # The user downloads the XML export into the same folder: picked up.
                for old in rncp.iterdir():
                    old.unlink()
                xml_folder(refdata_dir, rncp)
                body = await _until(client, "RS6604", 201, "after")
                assert body["warnings"] == []
                # `refdata load` from another process (another export): picked up too.
                other = SqliteStore(tmp_path / "var" / "state.db")
                try:
                    load_refdata(other.refdata(), csv_export(tmp_path / "other"), None)
                finally:
                    other.close()
                await _until(client, "RS6604", 422, "loaded")
        finally:
            await asyncio.wait_for(runner.cleanup(), timeout=30)

    try:
        asyncio.run(scenario())
    finally:
        core.close()


def test_a_file_that_cannot_be_read_is_one_line_and_exit_1(tmp_path: Path) -> None:
    folder = tmp_path / "fc"
    folder.mkdir()
    (folder / "export_fiches_RNCP_V4_1_2026-08-16.xml").write_text("<FICHES><FICHE>")
    result = run(write_config(tmp_path, {"rncp": folder}), "refdata", "load")
    assert result.exit_code == 1
    assert "export_fiches_RNCP_V4_1_2026-08-16.xml" in result.output
    assert "Traceback" not in result.output
