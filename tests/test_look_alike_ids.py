"""A record id sent in two Unicode forms is two records, as it is two passages at the CDC,
which deduplicates on the id's exact characters (SPEC §8): the platform is warned, and each id
reaches the CDC exactly as it was sent, or the CDC's report could not be matched back."""

from __future__ import annotations

import unicodedata
from pathlib import Path

from accrochage.app import Core
from tests.test_tracker import (
    assert_official_valid,
    event,
    ids_in_files,
    ingest,
    outstanding,
    xml_files,
)
from tests.test_tracker import core_1_1_2 as core_1_1_2

COMPOSED = unicodedata.normalize("NFC", "PX-\u00e9cole-7")
DECOMPOSED = unicodedata.normalize("NFD", COMPOSED)


def test_two_forms_of_an_id_are_two_records_and_the_odd_one_is_warned(
    core_1_1_2: Core, official_xsd: Path
) -> None:
    core = core_1_1_2
    composed, decomposed = ingest(core, event(COMPOSED), event(DECOMPOSED))
    assert (composed.outcome, composed.warnings) == ("created", [])
    assert decomposed.outcome == "created"
    assert [w.field for w in decomposed.warnings] == ["record_id"]
    assert "NFC" in decomposed.warnings[0].message

    listed = {row["record_id"]: row for row in outstanding(core)}
    assert listed[COMPOSED]["warnings"] == []
    assert [w["field"] for w in listed[DECOMPOSED]["warnings"]] == ["record_id"]

    report = core.flusher.flush(force=True)
    assert report.ok
    assert ids_in_files(core.settings.paths.outbox) == {COMPOSED: 1, DECOMPOSED: 1}
    assert_official_valid(xml_files(core.settings.paths.outbox), official_xsd)
