"""A platform that corrects a record, then sends again the content its batch carried: its last
word is what was sent, so the stored correction never goes out."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from accrochage.app import Core
from tests.test_cdc_loop import accepted, action_of, answer, flush, later, only_written
from tests.test_tracker import (
    NS,
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


def scored(original: dict[str, object], score: str) -> dict[str, object]:
    changed = replay(original)
    changed["score"] = score
    return changed


def test_an_accepted_record_sent_back_as_accepted_waits_for_nothing(
    core: Core, shared_dir: Path
) -> None:
    original = event("BS-1", score="100")
    accepted(core, shared_dir, original)
    assert ingest_one(core, scored(original, "200")).outcome == "correction_stored"
    assert [r["record_id"] for r in outstanding(core)] == ["BS-1"]

    back = ingest_one(core, replay(original))
    assert back.outcome == "updated"
    detail = record(core, "BS-1")
    assert (detail["status"], detail["correction_pending"]) == ("accepted", False)
    assert outstanding(core) == []
    assert not flush(core).cut, "no SUPPRESSION of what the CDC rightly holds"
    assert ingest_one(core, replay(original)).outcome == "unchanged"


def test_a_written_file_is_not_superseded_for_a_correction_taken_back(core: Core) -> None:
    original = event("BS-2", score="100")
    ingest(core, original, event("BS-3"))
    batch, path = only_written(flush(core))
    ingest(core, scored(original, "200"))
    assert ingest_one(core, replay(original)).outcome == "updated"
    assert not flush(core).cut
    assert record(core, "BS-2")["batch_id"] == batch and path.exists()
    assert passages(path)["BS-2"].findtext("cpf:scoring", namespaces=NS) == "100"


def test_taken_back_while_the_suppression_is_in_flight_the_sent_content_goes_again(
    core: Core, shared_dir: Path
) -> None:
    """The SUPPRESSION already left: the CDC will delete the passage, so the content sent
    before is the one to send again, not the correction taken back."""
    original = event("BS-4", score="100")
    accepted(core, shared_dir, original)
    later(core)
    ingest(core, scored(original, "200"))
    suppression, path = only_written(flush(core))
    assert action_of(path) == "SUPPRESSION"
    assert ingest_one(core, replay(original)).outcome == "correction_stored"
    answer(core, shared_dir, suppression, ok=["BS-4"])
    _, path = only_written(flush(core))
    assert action_of(path) == "CREATION"
    assert passages(path)["BS-4"].findtext("cpf:scoring", namespaces=NS) == "100"


def test_a_superseded_file_s_records_keep_their_age(tmp_path: Path) -> None:
    """One correction supersedes a written file: its records are cut again at once when they
    have waited `max_delay` since the first cut, not `max_delay` more."""
    core, clock = make_core(
        tmp_path, schema={"version": "1.1.5"}, batching={"max_delay": "1h", "max_records": 1000}
    )
    try:
        original = event("BS-5", score="100")
        ingest(core, original, event("BS-6"))
        old, _ = only_written(flush(core))
        clock.advance(timedelta(hours=2))
        ingest(core, scored(original, "200"))
        report = core.flusher.flush()
        assert report.superseded == [old]
        (written,) = report.written
        assert set(passages(written.path)) == {"BS-5", "BS-6"}
        assert "waited" in report.cut[0].reason
    finally:
        core.close()


def test_sent_back_after_the_cdc_refused_its_suppression(core: Core, shared_dir: Path) -> None:
    """The CDC refused the SUPPRESSION, so it still holds the content sent: sending that
    content again takes the correction back, and nothing waits any more."""
    original = event("BS-7", score="100")
    first = accepted(core, shared_dir, original)
    later(core)
    ingest(core, scored(original, "200"))
    suppression, _ = only_written(flush(core))
    answer(core, shared_dir, suppression, ko={"BS-7": "Erreur technique"})
    assert record(core, "BS-7")["suppression_rejected"] is True

    assert ingest_one(core, replay(original)).outcome == "updated"
    detail = record(core, "BS-7")
    assert (detail["status"], detail["batch_id"]) == ("accepted", first)
    assert (detail["correction_pending"], detail["suppression_rejected"]) == (False, False)
    assert outstanding(core) == []
    assert not flush(core).cut


def test_taken_back_the_accepted_record_shows_its_legal_date_again(
    core: Core, shared_dir: Path
) -> None:
    """A correction hides an accepted record's legal date (nothing is due by it: the request
    is); taken back, before or after its SUPPRESSION was written, the record shows it again,
    as every accepted record does."""
    first, second = event("BS-10", score="100"), event("BS-11", score="100")
    accepted(core, shared_dir, first, second)
    legal = {r: record(core, r)["deadline"] for r in ("BS-10", "BS-11")}
    assert None not in legal.values()

    ingest(core, scored(first, "200"))
    assert record(core, "BS-10")["deadline"] is None
    assert ingest_one(core, replay(first)).outcome == "updated"
    assert record(core, "BS-10")["deadline"] == legal["BS-10"]

    ingest(core, scored(second, "200"))
    suppression, _ = only_written(flush(core))
    assert ingest_one(core, replay(second)).outcome == "correction_stored"
    assert suppression in flush(core).superseded
    detail = record(core, "BS-11")
    assert (detail["status"], detail["correction_pending"]) == ("accepted", False)
    assert detail["deadline"] == legal["BS-11"]
