"""`reinstate`: the operator undoes a revocation an exam platform sent by mistake, wherever the
record was in its life: never sent, in a file waiting for its report, accepted with its
SUPPRESSION not cut yet, refused by the CDC, or deleted from the CDC already."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from accrochage.app import Core
from tests.factories import revoked_event
from tests.test_cdc_loop import accepted, action_of, answer, deposited, flush, only_written
from tests.test_cli_tracker import recent, run, write_jsonl
from tests.test_tracker import (
    event,
    ingest,
    make_core,
    outstanding,
    passages,
    record,
    write_config,
)

REASON = "revoked by mistake (ticket 12)"


@pytest.fixture()
def core(tmp_path: Path) -> Iterator[Core]:
    built, _ = make_core(tmp_path, schema={"version": "1.1.5"})
    yield built
    built.close()


def reinstate(core: Core, record_id: str) -> str:
    (outcome,) = core.operations.reinstate([record_id], REASON)
    assert outcome.done, outcome
    return outcome.message


def test_a_record_revoked_before_any_batch_is_sent_after_all(core: Core) -> None:
    original = event("RI-1")
    ingest(core, original, revoked_event(record_id="RI-1"))
    assert record(core, "RI-1")["status"] == "withdrawn"
    assert outstanding(core) == []

    assert reinstate(core, "RI-1") == "pending (was withdrawn)"
    detail = record(core, "RI-1")
    assert detail["status"] == "pending"
    assert detail["deadline"] == "2027-02-18", "its delivery's deadline again"
    assert f"reinstated by the operator: {REASON}" in detail["history"][-1]["reason"]
    assert [r["record_id"] for r in outstanding(core)] == ["RI-1"]
    _, path = only_written(flush(core))
    assert action_of(path) == "CREATION" and set(passages(path)) == {"RI-1"}


def test_a_revocation_of_a_record_in_flight_is_dropped(core: Core, shared_dir: Path) -> None:
    creation = deposited(core, event("RI-2"))
    ingest(core, revoked_event(record_id="RI-2"))
    assert record(core, "RI-2")["revocation_pending"] is True

    assert reinstate(core, "RI-2").startswith("deposited")
    assert record(core, "RI-2")["revocation_pending"] is False
    answer(core, shared_dir, creation, ok=["RI-2"])
    assert record(core, "RI-2")["status"] == "accepted"
    assert not flush(core).cut, "no SUPPRESSION: it stays at the CDC"
    assert outstanding(core) == []


def test_an_accepted_record_keeps_its_place_at_the_cdc(core: Core, shared_dir: Path) -> None:
    accepted(core, shared_dir, event("RI-3"))
    legal = record(core, "RI-3")["deadline"]
    ingest(core, revoked_event(record_id="RI-3"))
    assert record(core, "RI-3")["deadline"] is None

    reinstate(core, "RI-3")
    detail = record(core, "RI-3")
    assert (detail["status"], detail["revocation_pending"]) == ("accepted", False)
    assert detail["deadline"] == legal, "its legal date shows again"
    assert outstanding(core) == []
    assert not flush(core).cut


def test_a_refused_suppression_is_answered_by_reinstating(core: Core, shared_dir: Path) -> None:
    accepted(core, shared_dir, event("RI-4"))
    ingest(core, revoked_event(record_id="RI-4"))
    suppression, _ = only_written(flush(core))
    answer(core, shared_dir, suppression, ko={"RI-4": "Passage introuvable"})
    assert record(core, "RI-4")["suppression_rejected"] is True

    reinstate(core, "RI-4")
    detail = record(core, "RI-4")
    assert (detail["status"], detail["suppression_rejected"]) == ("accepted", False)
    assert detail["cdc_message"] is None and outstanding(core) == []
    assert not flush(core).cut and not core.operations.retry_rejected()


def test_a_record_the_cdc_deleted_is_sent_again_once_its_suppression_answered(
    core: Core, shared_dir: Path
) -> None:
    accepted(core, shared_dir, event("RI-5"))
    ingest(core, revoked_event(record_id="RI-5"))
    suppression, _ = only_written(flush(core))
    core.operations.deposited([suppression])

    (refused,) = core.operations.reinstate(["RI-5"], REASON)
    assert not refused.done and f"SUPPRESSION is in batch {suppression}" in refused.message
    assert record(core, "RI-5")["revocation_pending"] is True, "untouched"

    answer(core, shared_dir, suppression, ok=["RI-5"])
    assert record(core, "RI-5")["status"] == "withdrawn"
    reinstate(core, "RI-5")
    detail = record(core, "RI-5")
    assert detail["status"] == "pending"
    assert detail["deadline"] is None, "its delivery was on time: met for good"
    assert [r["record_id"] for r in outstanding(core)] == ["RI-5"]
    _, path = only_written(flush(core))
    assert action_of(path) == "CREATION" and set(passages(path)) == {"RI-5"}


def test_a_suppression_file_never_deposited_is_superseded(core: Core, shared_dir: Path) -> None:
    """Reinstated before anyone uploaded its SUPPRESSION file: no report will ever answer that
    file, and uploaded it would delete a passage the record keeps. It is superseded, the
    record waits for nothing, and the file's other record is cut again."""
    accepted(core, shared_dir, event("RI-8"), event("RI-9"))
    ingest(core, revoked_event(record_id="RI-8"), revoked_event(record_id="RI-9"))
    suppression, path = only_written(flush(core))

    message = reinstate(core, "RI-8")
    assert f"SUPPRESSION file {suppression[:8]}, never deposited, is superseded" in message
    assert not path.exists() and (path.parent / "superseded" / path.name).exists()
    detail = record(core, "RI-8")
    assert (detail["status"], detail["revocation_pending"]) == ("accepted", False)
    assert [r["record_id"] for r in outstanding(core)] == ["RI-9"]
    _, again = only_written(flush(core))
    assert action_of(again) == "SUPPRESSION" and set(passages(again)) == {"RI-9"}


def test_a_suppression_its_report_left_out_is_not_said_to_wait_for_that_report(
    core: Core, shared_dir: Path
) -> None:
    """The SUPPRESSION file's report came and did not mention the record: no report is to
    come, so reinstate (and support-applied) say how to learn what the CDC did, not to
    import a report already imported."""
    accepted(core, shared_dir, event("RI-10"), event("RI-11"))
    ingest(core, revoked_event(record_id="RI-10"), revoked_event(record_id="RI-11"))
    suppression, _ = only_written(flush(core))
    core.operations.deposited([suppression])
    answer(core, shared_dir, suppression, ok=["RI-11"])

    (refused,) = core.operations.reinstate(["RI-10"], REASON)
    (also,) = core.operations.support_applied(["RI-10"], "ticket 7")
    for outcome in (refused, also):
        assert not outcome.done
        assert "did not mention it" in outcome.message
        assert "import that file's report" not in outcome.message
        assert "`accrochage retry RI-10`" in outcome.message
    assert record(core, "RI-10")["revocation_pending"] is True, "untouched"


def test_what_is_not_revoked_is_refused(core: Core) -> None:
    ingest(core, event("RI-6"))
    outcomes = core.operations.reinstate(["RI-6", "RI-404"], REASON)
    assert [(o.done, o.message) for o in outcomes] == [
        (False, "record RI-6 is pending and not revoked: there is no revocation to undo"),
        (False, "unknown record"),
    ]


def test_include_is_not_how_a_revocation_is_undone(core: Core) -> None:
    ingest(core, event("RI-7"), revoked_event(record_id="RI-7"))
    (refused,) = core.operations.include(["RI-7"])
    assert not refused.done
    assert "withdrawn (revoked), not excluded" in refused.message
    assert "accrochage reinstate RI-7" in refused.message


def test_the_command(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    events = [recent("RC-1"), revoked_event(record_id="RC-1")]
    run(config, "ingest", str(write_jsonl(tmp_path / "a.jsonl", events)))
    assert "--reason must say" in run(config, "reinstate", "RC-1", "--reason", " ", code=2).stderr
    done = run(config, "reinstate", "RC-1", "RC-2", "--reason", REASON, code=1)
    assert "RC-1: pending (was withdrawn)" in done.stdout
    assert "RC-2" in done.output and "unknown record" in done.output
