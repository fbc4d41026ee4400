"""Record ids are unique across the tracker (the CDC's idTechnique), and the first valid event
takes one: an id held by a record that never passed validation goes to another certifier's
valid event, so that no platform can reserve, with a two-field invalid event, an id another
certifier's platform needs. The record that yields it is kept in the unusable log; a record
valid once keeps its id for good."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from accrochage.app import Core
from accrochage.models.deadline import SystemClock
from accrochage.settings import load_settings
from accrochage.streams.check import check
from accrochage.streams.incoming import Incoming
from tests.factories import revoked_event
from tests.test_http import core_for
from tests.test_ingest_scope import ANY, PIX, get, post, service
from tests.test_ingest_scope import core as core
from tests.test_tracker import event, ingest, record, rows, write_config
from tests.test_upgrade_repairs import as_before

TAKEN = "taken by a valid event of certifier 'school'"


def reservation(record_id: str) -> dict[str, Any]:
    """All a hostile platform needs to send: an id and its own certifier."""
    return {"type": "certification.delivered", "record_id": record_id, "certifier": "pix"}


def school(record_id: str) -> dict[str, Any]:
    return event(record_id, certifier="school", delivered_on="2026-11-18")


async def test_a_scoped_platform_cannot_reserve_another_certifiers_id(
    core: tuple[Core, bool],
) -> None:
    """Pix's platform sends an invalid event under an id; school's platform, through an open
    token, then delivers a valid certification under it: the id is school's, created as for
    a new id, and pix's event waits in the unusable log. Pix may not take it back."""
    async with service(core) as client:
        status, answer = await post(client, reservation("RES-1"), PIX)
        assert (status, answer["status"]) == (422, "invalid")

        status, answer = await post(client, school("RES-1"), ANY)
        assert (status, answer["outcome"], answer["status"]) == (201, "created", "pending")
        assert "pix" not in json.dumps(answer), "the answer names no other certifier"

        _, detail = await get(client, "/records/RES-1")
        assert (detail["certifier"], detail["status"]) == ("school", "pending")
        assert TAKEN in detail["history"][-1]["reason"]
        _, listed = await get(client, "/unusable")
        (kept,) = [u for u in listed["events"] if u["record_id"] == "RES-1"]
        assert TAKEN in kept["errors"][0]["message"], kept
        assert "'pix' never passed validation" in kept["errors"][0]["message"]

        status, answer = await post(client, event("RES-1"), PIX)
        assert (status, answer["outcome"]) == (403, "forbidden")
        assert (await get(client, "/records/RES-1"))[1]["certifier"] == "school"

        # The other way: a scoped platform's valid event takes the id of another
        # certifier's record that never passed validation, and only such a record's.
        unfinished = school("RES-4")
        del unfinished["holder"]
        assert (await post(client, unfinished, ANY))[1]["status"] == "invalid"
        status, answer = await post(client, event("RES-4"), PIX)
        assert (status, answer["outcome"], answer["status"]) == (201, "created", "pending")
        assert "school" not in json.dumps(answer)
        assert (await get(client, "/records/RES-4"))[1]["certifier"] == "pix"
        assert (await post(client, school("RES-5"), ANY))[0] == 201
        status, answer = await post(client, event("RES-5"), PIX)
        assert (status, answer["outcome"]) == (403, "forbidden")


async def test_a_record_valid_once_keeps_its_id(
    core: tuple[Core, bool],
) -> None:
    """A certification pix delivered, then corrected with errors before its cut: it was
    valid, so its id stays pix's; and an invalid event of another certifier takes nothing."""
    async with service(core) as client:
        assert (await post(client, event("RES-2"), PIX))[0] == 201
        broken = event("RES-2")
        del broken["holder"]
        assert (await post(client, broken, PIX))[1]["status"] == "invalid"
        status, answer = await post(client, school("RES-2"), ANY)
        assert (status, answer["errors"][0]["field"]) == (422, "record_id"), answer
        assert (await get(client, "/records/RES-2"))[1]["certifier"] == "pix"

        assert (await post(client, reservation("RES-3"), PIX))[0] == 422
        half = school("RES-3")
        del half["holder"]
        status, answer = await post(client, half, ANY)
        assert (status, answer["errors"][0]["field"]) == (422, "record_id"), answer
        assert (await get(client, "/records/RES-3"))[1]["certifier"] == "pix"


def test_in_one_input_and_after_a_revocation(tmp_path: Path) -> None:
    """A file holding pix's invalid event and school's valid one under the same id (the
    first not stored yet when the second takes it), and a never-valid record pix revoked:
    both ids go to school; pix's last contents are kept in the unusable log."""
    built = core_for(tmp_path)
    try:
        results = ingest(built, reservation("ONE-1"), school("ONE-1"))
        assert [(r.outcome, r.status) for r in results] == [
            ("created", "invalid"),
            ("created", "pending"),
        ]
        ingest(built, reservation("REV-1"))
        assert ingest(built, revoked_event(record_id="REV-1"))[0].status == "withdrawn"
        (taken,) = ingest(built, school("REV-1"))
        assert (taken.outcome, taken.status, taken.errors) == ("created", "pending", [])

        for record_id in ("ONE-1", "REV-1"):
            detail = record(built, record_id)
            assert (detail["certifier"], detail["status"]) == ("school", "pending")
        kept = rows(built, "SELECT record_id, raw, errors FROM unusable ORDER BY id")
        assert [k["record_id"] for k in kept] == ["ONE-1", "REV-1"]
        for one in kept:
            assert json.loads(one["raw"])["certifier"] == "pix", "pix's own content, whole"
            assert TAKEN in json.loads(one["errors"])[0]["message"]
        assert len(built.flusher.flush(force=True).written) == 1, "school's two records leave"
    finally:
        built.close()


def test_check_says_what_ingest_does(tmp_path: Path) -> None:
    built = core_for(tmp_path)
    try:
        ingest(built, reservation("CK-1"), event("CK-2"))
        half = school("CK-1")
        del half["holder"]
        items = [Incoming(e, "test") for e in (school("CK-1"), half, school("CK-2"))]
        found = check(items, built.registry, SystemClock(), built.store)
        assert [r.valid for r in found] == [True, False, False]
        assert [p.field for r in found[1:] for p in r.errors if "pix" in p.message] == [
            "record_id",
            "record_id",
        ]
    finally:
        built.close()


def test_an_upgraded_state_knows_which_records_were_ever_valid(tmp_path: Path) -> None:
    """m150 over a state of before it: a record only ever invalid (or withdrawn so) yields
    its id; one valid once, and every other, keeps it."""
    config = write_config(tmp_path)
    built = core_for(tmp_path)
    try:
        broken = event("UP-2")
        del broken["holder"]
        ingest(built, reservation("UP-1"), event("UP-2"), broken, reservation("UP-3"))
        ingest(built, revoked_event(record_id="UP-3"), event("UP-4"))
    finally:
        built.close()
    assert load(config, "SELECT record_id, ever_valid FROM records ORDER BY 1") == [
        ("UP-1", 0),
        ("UP-2", 1),
        ("UP-3", 0),
        ("UP-4", 1),
    ]
    as_before(config, ("m150_ever_valid",), "ALTER TABLE records DROP COLUMN ever_valid")

    built = core_for(tmp_path)
    try:
        taken = ingest(built, *(school(f"UP-{n}") for n in (1, 2, 3, 4)))
        assert [r.outcome for r in taken] == ["created", "refused", "created", "refused"]
    finally:
        built.close()


def load(config: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(load_settings(config).paths.state)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()
