"""A SUPPRESSION file superseded before any deposit, yet uploaded all the same: the CDC deleted
what it carried. Its report is applied to what that file asked, like a CREATION file's
(`test_cdc_loop.py`): what the CDC no longer holds is sent again, or withdrawn, and the newer
SUPPRESSION file that would ask for the same deletion is superseded."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from accrochage.app import Core
from tests.factories import revoked_event
from tests.test_back_to_sent import scored
from tests.test_cdc_loop import accepted, action_of, answer, flush, only_written
from tests.test_tracker import (
    NS,
    batch_row,
    event,
    ingest,
    ingest_one,
    make_core,
    outstanding,
    passages,
    record,
    replay,
)


@pytest.fixture()
def core(tmp_path: Path) -> Iterator[Core]:
    built, _ = make_core(tmp_path, schema={"version": "1.1.5"})
    yield built
    built.close()


def revocation_of(original: dict[str, object]) -> dict[str, object]:
    return revoked_event(
        record_id=original["record_id"],
        event_id=str(uuid.uuid4()),
        certification=original["certification"],
    )


def superseded_suppression(core: Core, shared_dir: Path) -> tuple[str, str]:
    """SU-1 corrected then taken back, SU-2 corrected, SU-3 revoked: one SUPPRESSION file
    carrying all three, superseded when SU-1 is taken back (the operator had uploaded it);
    the newer SUPPRESSION carries SU-2 and SU-3. Returns (superseded batch, newer batch)."""
    kept, fixed, revoked = (event(f"SU-{n}", score="100") for n in (1, 2, 3))
    accepted(core, shared_dir, kept, fixed, revoked)
    ingest(core, scored(kept, "200"), scored(fixed, "300"), revocation_of(revoked))
    first, path = only_written(flush(core))
    assert action_of(path) == "SUPPRESSION" and set(passages(path)) == {"SU-1", "SU-2", "SU-3"}
    assert ingest_one(core, replay(kept)).outcome in ("updated", "correction_stored")
    report = flush(core)
    assert report.superseded == [first]
    newer, newer_path = only_written(report)
    assert set(passages(newer_path)) == {"SU-2", "SU-3"}
    assert record(core, "SU-1")["status"] == "accepted"
    return first, newer


def test_the_cdc_deleted_what_a_superseded_suppression_carried(
    core: Core, shared_dir: Path
) -> None:
    first, newer = superseded_suppression(core, shared_dir)

    summary = answer(core, shared_dir, first, ok=["SU-1", "SU-2", "SU-3"])

    assert sorted(summary.accepted) == ["SU-1", "SU-2", "SU-3"]
    taken_back = record(core, "SU-1")
    assert taken_back["status"] == "pending", "the CDC no longer holds it: it is sent again"
    assert "earlier file" in taken_back["history"][-1]["reason"]
    assert record(core, "SU-2")["status"] == "pending", "its correction is sent next"
    assert record(core, "SU-3")["status"] == "withdrawn"
    assert batch_row(core, newer)["state"] == "superseded", "it would delete nothing now"
    assert any(f"batch {newer}, written and never deposited" in n for n in summary.notes)
    assert {r["record_id"] for r in outstanding(core)} == {"SU-1", "SU-2"}

    written = flush(core).written
    (creation,) = written
    assert action_of(creation.path) == "CREATION"
    sent = passages(creation.path)
    assert set(sent) == {"SU-1", "SU-2"}
    assert sent["SU-1"].findtext("cpf:scoring", namespaces=NS) == "100"
    assert sent["SU-2"].findtext("cpf:scoring", namespaces=NS) == "300"


def test_a_refusal_in_the_superseded_file_changes_nothing(core: Core, shared_dir: Path) -> None:
    """Refused there, the CDC still holds each passage: the newer file asks again."""
    first, newer = superseded_suppression(core, shared_dir)
    summary = answer(
        core, shared_dir, first, ko={r: "Passage introuvable" for r in ("SU-1", "SU-2", "SU-3")}
    )
    assert sorted(summary.unchanged) == ["SU-1", "SU-2", "SU-3"]
    assert batch_row(core, newer)["state"] == "written"
    assert [record(core, f"SU-{n}")["status"] for n in (1, 2, 3)] == ["accepted"] * 3


def test_the_newer_suppression_deposited_too_is_left_to_its_own_report(
    core: Core, shared_dir: Path
) -> None:
    """Both files reached the CDC: the first deleted the passages, so the second's refusal
    (nothing left to delete) changes nothing more."""
    first, newer = superseded_suppression(core, shared_dir)
    core.operations.deposited([newer])
    answer(core, shared_dir, first, ok=["SU-1", "SU-2", "SU-3"])
    assert batch_row(core, newer)["state"] == "deposited"
    before = [record(core, f"SU-{n}")["status"] for n in (1, 2, 3)]
    assert before == ["pending", "pending", "withdrawn"]
    answer(
        core, shared_dir, newer, ko={"SU-2": "Passage introuvable", "SU-3": "Passage introuvable"}
    )
    assert [record(core, f"SU-{n}")["status"] for n in (1, 2, 3)] == before


def test_an_older_deletion_never_undoes_a_later_acceptance(core: Core, shared_dir: Path) -> None:
    """The superseded file's report comes after the record was sent again and accepted with
    another content: the deletion it reports was of a passage since replaced."""
    first, newer = superseded_suppression(core, shared_dir)
    answer(core, shared_dir, newer, ok=["SU-2", "SU-3"])
    creation, _ = only_written(flush(core))
    answer(core, shared_dir, creation, ok=["SU-2"])
    assert record(core, "SU-2")["status"] == "accepted"

    summary = answer(core, shared_dir, first, ok=["SU-2"])
    assert summary.unchanged == ["SU-2"]
    assert record(core, "SU-2")["status"] == "accepted"
