"""An event that says what a record holds, written otherwise, repeats it: no correction.

The content's hash was taken from the event as sent, so a platform that left a default out
(`type`, `certified`, a null), sent a score as a number, a birth date as its parts, or a name
with a space around it, stored a correction of the same content: a written file was
superseded and cut again, and an accepted record went to the CDC as a SUPPRESSION and a new
CREATION of the same passage.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from accrochage.app import Core
from tests.test_cdc_loop import accepted, flush, later, only_written
from tests.test_tracker import event, ingest, make_core, record, replay, rows


@pytest.fixture()
def core(tmp_path: Path) -> Iterator[Core]:
    built, _ = make_core(tmp_path, schema={"version": "1.1.5"})
    yield built
    built.close()


def _without_defaults(sent: dict[str, Any]) -> None:
    for name in ("type", "certified", "valid_until", "mention", "proof_url"):
        sent.pop(name, None)


def _score_as_number(sent: dict[str, Any]) -> None:
    sent["score"] = int(sent["score"])


def _birth_date_as_parts(sent: dict[str, Any]) -> None:
    year, month, day = (int(part) for part in sent["holder"]["birth_date"].split("-"))
    sent["holder"]["birth_date"] = {"year": year, "month": month, "day": day}


def _spaces_around_a_name(sent: dict[str, Any]) -> None:
    sent["holder"]["birth_name"] = f" {sent['holder']['birth_name']} "


OTHER_WORDS: dict[str, Callable[[dict[str, Any]], None]] = {
    "defaults left out": _without_defaults,
    "score as a number": _score_as_number,
    "birth date as its parts": _birth_date_as_parts,
    "spaces around a name": _spaces_around_a_name,
}


def in_other_words(original: dict[str, Any], *ways: str) -> dict[str, Any]:
    sent = replay(original)
    for way in ways or tuple(OTHER_WORDS):
        OTHER_WORDS[way](sent)
    assert sent != original
    return sent


def versions(core: Core, record_id: str) -> int:
    (row,) = rows(core, "SELECT count(*) AS n FROM contents WHERE record_id = ?", record_id)
    return int(row["n"])


@pytest.mark.parametrize("way", sorted(OTHER_WORDS))
def test_a_pending_record_sent_again_in_other_words_is_unchanged(core: Core, way: str) -> None:
    original = event("RP-1")
    ingest(core, original)
    (result,) = ingest(core, in_other_words(original, way))
    assert (result.outcome, result.status) == ("unchanged", "pending")
    assert versions(core, "RP-1") == 1


def test_a_written_file_is_not_superseded_by_a_repetition(core: Core) -> None:
    original = event("RP-2")
    ingest(core, original, event("RP-3"))
    batch_id, path = only_written(flush(core))
    later(core)
    (result,) = ingest(core, in_other_words(original))
    assert result.outcome == "unchanged"
    assert record(core, "RP-2")["correction_pending"] is False
    report = flush(core)
    assert report.written == [] and report.superseded == []
    assert path.exists()
    (batch,) = rows(core, "SELECT state FROM batches WHERE batch_id = ?", batch_id)
    assert batch["state"] == "written"


def test_an_accepted_record_sent_again_in_other_words_sends_nothing(
    core: Core, shared_dir: Path
) -> None:
    original = event("RP-4")
    accepted(core, shared_dir, original)
    later(core)
    (result,) = ingest(core, in_other_words(original))
    assert (result.outcome, result.status) == ("unchanged", "accepted")
    assert flush(core).written == []


def test_a_real_change_written_otherwise_is_still_a_correction(core: Core) -> None:
    original = event("RP-5")
    ingest(core, original)
    only_written(flush(core))
    changed = in_other_words(original)
    changed["score"] = 325
    (result,) = ingest(core, changed)
    assert result.outcome == "correction_stored"
    assert versions(core, "RP-5") == 2
    # Its correction, sent again in other words: the stored correction, repeated.
    again = copy.deepcopy(changed)
    again["score"] = "325"
    again["type"] = "certification.delivered"
    (repeated,) = ingest(core, again)
    assert repeated.outcome == "unchanged"
    assert versions(core, "RP-5") == 2


def test_two_writings_of_one_correction_in_one_group_store_it_once(core: Core) -> None:
    """The first's content is not saved yet when the second is compared with it."""
    original = event("RP-6")
    ingest(core, original)
    first = replay(original)
    first["score"] = "400"
    second = in_other_words(first)
    results = ingest(core, first, second)
    assert [r.outcome for r in results] == ["updated", "unchanged"]
    assert versions(core, "RP-6") == 2
    (row,) = rows(core, "SELECT content_hash, version FROM records WHERE record_id = 'RP-6'")
    (content,) = rows(
        core, "SELECT content_hash FROM contents WHERE record_id = 'RP-6' AND version = 2"
    )
    assert row["content_hash"] == content["content_hash"]
