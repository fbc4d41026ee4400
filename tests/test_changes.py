"""`GET /changes`: an exam platform learns what became of its holders' certifications (the
CDC's acceptance or rejection, a record taken back) by asking for the changes after the last
one it read, without walking all its records again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from accrochage.api import changes
from accrochage.api import schemas as s
from accrochage.app import Core, build_core
from accrochage.settings import load_settings
from tests import test_ingest_scope
from tests.test_cli_tracker import run, write_jsonl
from tests.test_http import recent, serving
from tests.test_ingest_scope import OP, PIX, post, service
from tests.test_tracker import NO_HOLDER, ingest, processed_report, write_config

core = test_ingest_scope.core
"""A core with a pix-scoped ingest token, its writer a thread, a process, or with decoders."""


async def read(
    client: aiohttp.ClientSession, headers: dict[str, str], query: str = ""
) -> tuple[int, Any]:
    async with client.get(f"/changes{query}", headers=headers) as response:
        return response.status, await response.json()


def seq_of(mark: str) -> int:
    return int(mark.split(".")[1])


async def all_changes(
    client: aiohttp.ClientSession, headers: dict[str, str], after: str = "", limit: int = 2
) -> tuple[list[dict[str, Any]], str]:
    """Every change after `after`, page by page as a platform reads them (bounded)."""
    seen: list[dict[str, Any]] = []
    for _ in range(1000):
        status, page = await read(client, headers, f"?after={after}&limit={limit}")
        assert status == 200, page
        # As the description says: a platform's page has no field of the operator's.
        (s.ChangesPage if headers == OP else s.PlatformChangesPage).model_validate(page)
        seen += page["changes"]
        assert not after or seq_of(page["next_after"]) >= seq_of(after)
        after = page["next_after"]
        if not page["more"]:
            return seen, after
    raise AssertionError("the pages never ended")


def report_for(built: Core, shared_dir: Path, ok: list[str], ko: dict[str, str]) -> None:
    """The pix file written, deposited, and the CDC's report on it imported."""
    written = built.flusher.flush(force=True).written
    (batch_id,) = [w.batch_id for w in written if w.certifier == "pix"]
    with built.store.reading() as reader:
        batch = reader.batch_detail(batch_id)
    assert batch is not None
    built.operations.deposited([batch_id])
    data = processed_report(
        shared_dir, file_name=batch["file_name"], id_flux=batch_id, ok=ok, ko=ko
    )
    built.feedback.import_report_bytes(data, "r.xml")


async def test_a_platform_reads_its_records_fate_change_by_change(
    core: tuple[Core, bool], shared_dir: Path
) -> None:
    async with service(core) as client:
        for record_id in ("CH-OK", "CH-KO"):
            assert (await post(client, recent(record_id), PIX))[0] == 201
        assert (await post(client, recent("CH-SC", certifier="school"), OP))[0] == 201
        seen, mark = await all_changes(client, PIX)
        assert [(c["record_id"], c["to_status"]) for c in seen] == [
            ("CH-OK", "pending"),
            ("CH-KO", "pending"),
        ], "the school's record is not the pix platform's to read"

        report_for(core[0], shared_dir, ok=["CH-OK"], ko={"CH-KO": NO_HOLDER})
        later, _ = await all_changes(client, PIX, after=mark)
        fates = [(c["record_id"], c["from_status"], c["to_status"]) for c in later]
        assert ("CH-OK", "deposited", "accepted") in fates
        assert ("CH-KO", "deposited", "rejected") in fates
        assert [c["seq"] for c in later] == sorted({c["seq"] for c in later}), "in order, once"
        assert all(c["seq"] > seq_of(mark) for c in later)
        said = json.dumps(later, ensure_ascii=False)
        assert "reason" not in said and "report" not in said and NO_HOLDER not in said
        assert "school" not in said

        everything, _ = await all_changes(client, OP, limit=100)
        assert {c["certifier"] for c in everything} == {"pix", "school"}
        rejected = next(c for c in everything if c["to_status"] == "rejected")
        assert NO_HOLDER in rejected["reason"], "the operator reads the CDC's message"


async def test_a_platform_reads_nothing_before_it_took_a_record_over(
    core: tuple[Core, bool],
) -> None:
    """Like the record's own history (`GET /records/{id}`): another certifier's events under
    the id, before a valid pix event took it, are not the pix platform's to read."""
    async with service(core) as client:
        school = recent("CH-TK", certifier="school", obtention="PAR_HASARD")
        assert (await post(client, school | {"event_id": "school-1"}, OP))[0] == 422
        assert (await post(client, recent("CH-TK") | {"event_id": "pix-1"}, PIX))[0] == 201
        seen, _ = await all_changes(client, PIX)
        assert [(c["from_status"], c["to_status"], c["event_id"]) for c in seen] == [
            (None, "pending", "pix-1")
        ]
        whole, _ = await all_changes(client, OP)
        assert [(c["from_status"], c["to_status"]) for c in whole] == [
            (None, "invalid"),
            ("invalid", "pending"),
        ]


async def test_a_scan_is_bounded_and_goes_on_where_it_stopped(
    core: tuple[Core, bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A platform of few changes among many of other certifiers: each request looks through
    at most `WINDOW` changes, says how far it looked, and the next goes on from there."""
    monkeypatch.setattr(changes, "WINDOW", 3)
    async with service(core) as client:
        others = [recent(f"CH-S{n}", certifier="school") for n in range(7)]
        assert (await post(client, others, OP))[0] == 200
        assert (await post(client, recent("CH-PX"), PIX))[0] == 201
        status, first = await read(client, PIX, "?limit=10")
        assert (status, first["changes"], seq_of(first["next_after"]), first["more"]) == (
            200,
            [],
            3,
            True,
        )
        seen, end = await all_changes(client, PIX, limit=10)
        assert [c["record_id"] for c in seen] == ["CH-PX"]
        assert seq_of(end) == 8
        status, last = await read(client, PIX, f"?after={end}")
        assert (last["changes"], last["next_after"], last["more"]) == ([], end, False)


async def test_a_platform_reads_only_its_own_certifiers_changes(
    core: tuple[Core, bool],
) -> None:
    async with service(core) as client:
        status, refused = await read(client, PIX, "?certifier=school")
        assert status == 403 and refused["error"]["code"] == "forbidden"
        assert (await read(client, PIX, "?certifier=pix"))[0] == 200
        for made_up in ("-1", "12", "0123abcd.x", "0123abcd.-1"):
            status, bad = await read(client, PIX, f"?after={made_up}")
            assert status == 400 and bad["error"]["code"] == "bad_parameter", made_up


async def test_a_mark_given_before_a_restore_is_told_not_trusted(tmp_path: Path) -> None:
    """A restore puts an older backup in place: the changes stored after it are gone and new
    ones take their numbers again. A platform's mark of the old numbering would skip those new
    changes: it is refused (409), with where to read on once the records are read again."""
    config = write_config(tmp_path)
    run(config, "ingest", str(write_jsonl(tmp_path / "a.jsonl", [recent("RB-1"), recent("RB-2")])))
    (tmp_path / "backups").mkdir()
    taken = json.loads(run(config, "backup", str(tmp_path / "backups"), "--format", "json").stdout)
    run(config, "ingest", str(write_jsonl(tmp_path / "b.jsonl", [recent("RB-3"), recent("RB-4")])))
    built = build_core(load_settings(config))
    try:
        async with serving(built) as client:
            seen, mark = await all_changes(client, OP)
    finally:
        built.close()
    assert [c["record_id"] for c in seen] == ["RB-1", "RB-2", "RB-3", "RB-4"]

    run(config, "restore", taken["path"])
    run(config, "ingest", str(write_jsonl(tmp_path / "c.jsonl", [recent("RB-5"), recent("RB-6")])))
    built = build_core(load_settings(config))
    try:
        async with serving(built) as client:
            status, refused = await read(client, OP, f"?after={mark}")
            assert (status, refused["error"]["code"]) == (409, "changes_restarted"), refused
            restart = refused["error"]["details"]["after"]
            assert seq_of(restart) == seq_of(mark), "RB-5 and RB-6 took RB-3's and RB-4's numbers"
            async with client.get("/records?order=record_id", headers=OP) as response:
                listed = [r["record_id"] for r in (await response.json())["records"]]
            assert listed == ["RB-1", "RB-2", "RB-5", "RB-6"], "read again, as the error says"
            assert (await all_changes(client, OP, after=restart))[0] == []
            ingest(built, recent("RB-7"))
            later, _ = await all_changes(client, OP, after=restart)
            assert [c["record_id"] for c in later] == ["RB-7"]
    finally:
        built.close()
