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
from accrochage.app import Core
from tests import test_ingest_scope
from tests.test_http import recent
from tests.test_ingest_scope import OP, PIX, post, service
from tests.test_tracker import NO_HOLDER, processed_report

core = test_ingest_scope.core
"""A core with a pix-scoped ingest token, its writer a thread, a process, or with decoders."""


async def read(
    client: aiohttp.ClientSession, headers: dict[str, str], query: str = ""
) -> tuple[int, Any]:
    async with client.get(f"/changes{query}", headers=headers) as response:
        return response.status, await response.json()


async def all_changes(
    client: aiohttp.ClientSession, headers: dict[str, str], after: int = 0, limit: int = 2
) -> tuple[list[dict[str, Any]], int]:
    """Every change after `after`, page by page as a platform reads them (bounded)."""
    seen: list[dict[str, Any]] = []
    for _ in range(1000):
        status, page = await read(client, headers, f"?after={after}&limit={limit}")
        assert status == 200, page
        # As the description says: a platform's page has no field of the operator's.
        (s.ChangesPage if headers == OP else s.PlatformChangesPage).model_validate(page)
        seen += page["changes"]
        assert page["next_after"] >= after
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
        assert all(c["seq"] > mark for c in later)
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
        assert (status, first["changes"], first["next_after"], first["more"]) == (
            200,
            [],
            3,
            True,
        )
        seen, end = await all_changes(client, PIX, limit=10)
        assert [c["record_id"] for c in seen] == ["CH-PX"]
        assert end == 8
        status, last = await read(client, PIX, f"?after={end}")
        assert (last["changes"], last["next_after"], last["more"]) == ([], end, False)


async def test_a_platform_reads_only_its_own_certifiers_changes(
    core: tuple[Core, bool],
) -> None:
    async with service(core) as client:
        status, refused = await read(client, PIX, "?certifier=school")
        assert status == 403 and refused["error"]["code"] == "forbidden"
        assert (await read(client, PIX, "?certifier=pix"))[0] == 200
        status, bad = await read(client, PIX, "?after=-1")
        assert status == 400 and bad["error"]["code"] == "bad_parameter"
