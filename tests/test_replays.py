"""An event the record took already, sent again (a platform's replay, an HTTP retry answered
late, yesterday's file ingested twice), changes nothing, whatever came after it: it does not
take a correction back, nor revoke again what the operator reinstated. A new emission (a new
`event_id`) with the same content is a decision, and acts as before."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

from accrochage.app import Core
from tests.factories import revoked_event
from tests.test_back_to_sent import core, scored
from tests.test_cdc_loop import accepted, flush, only_written
from tests.test_cli_tracker import recent, run, write_jsonl
from tests.test_http import core_for
from tests.test_ingest_scope import ANY, get, post, service
from tests.test_ingest_scope import core as core_paths
from tests.test_tracker import (
    event,
    history,
    ingest,
    ingest_one,
    passages,
    record,
    replay,
    rows,
    write_config,
)
from tests.test_upgrade_repairs import as_before

__all__ = ["core", "core_paths"]


def score_of(core: Core, record_id: str) -> str:
    return str(record(core, record_id)["content"]["score"])


def test_a_replayed_first_event_does_not_undo_a_correction(core: Core) -> None:
    original = event("RP-1", score="100")
    correction = scored(original, "200")
    assert [r.outcome for r in ingest(core, original, correction)] == ["created", "updated"]

    again = ingest_one(core, copy.deepcopy(original))
    assert (again.outcome, again.status) == ("unchanged", "pending")
    detail = record(core, "RP-1")
    assert detail["version"] == 2 and score_of(core, "RP-1") == "200"
    assert len(history(core, "RP-1")) == 2, "a replay writes nothing"

    decided = ingest_one(core, replay(original))
    assert decided.outcome == "updated", "the same content under a new event_id is a decision"
    assert score_of(core, "RP-1") == "100"


def test_one_input_holding_an_event_its_correction_and_the_event_again(core: Core) -> None:
    original = event("RP-2", score="100")
    outcomes = ingest(core, original, scored(original, "200"), copy.deepcopy(original))
    assert [r.outcome for r in outcomes] == ["created", "updated", "unchanged"]
    assert score_of(core, "RP-2") == "200"


def test_the_same_event_written_otherwise_is_a_replay(core: Core) -> None:
    """A replay re-serialised by the platform (keys in another order, a default spelt out)
    hashes differently from its first sending: it is compared field by field."""
    original = event("RP-3", score="100")
    ingest(core, original, scored(original, "200"))
    rewritten = dict(reversed(list(copy.deepcopy(original).items())))
    rewritten["certified"] = True
    assert ingest_one(core, rewritten).outcome == "unchanged"
    assert score_of(core, "RP-3") == "200"


def test_an_event_id_used_again_for_another_content_is_a_correction(core: Core) -> None:
    """Event ids are unique per emission: one sent again with another content is not a
    replay, and its content is not lost."""
    original = event("RP-4", score="100")
    ingest(core, original)
    reused = copy.deepcopy(original)
    reused["score"] = "300"
    assert ingest_one(core, reused).outcome == "updated"
    assert score_of(core, "RP-4") == "300"


def test_a_replay_does_not_take_a_stored_correction_back(core: Core) -> None:
    """In a batch with a correction stored beside it, the record's first event sent again is
    a replay; the same content under a new event_id takes the correction back (as before)."""
    original = event("RP-5", score="100")
    ingest(core, original)
    flush(core)
    assert ingest_one(core, scored(original, "200")).outcome == "correction_stored"

    assert ingest_one(core, copy.deepcopy(original)).outcome == "unchanged"
    assert record(core, "RP-5")["correction_pending"] is True

    assert ingest_one(core, replay(original)).outcome == "updated"
    assert record(core, "RP-5")["correction_pending"] is False


def test_a_replayed_revocation_does_not_undo_reinstate(core: Core) -> None:
    revocation = revoked_event(record_id="RP-6")
    ingest(core, event("RP-6"), revocation)
    assert record(core, "RP-6")["status"] == "withdrawn"
    (done,) = core.operations.reinstate(["RP-6"], "revoked by mistake (ticket 7)")
    assert done.done

    again = ingest_one(core, copy.deepcopy(revocation))
    assert (again.outcome, again.status) == ("unchanged", "pending")
    assert record(core, "RP-6")["status"] == "pending"
    revoking = [h for h in history(core, "RP-6") if h["reason"].startswith("revoked")]
    assert [h["event_id"] for h in revoking] == [revocation["event_id"]]

    fresh = dict(copy.deepcopy(revocation), event_id="a-new-decision")
    assert ingest_one(core, fresh).outcome == "withdrawn", "a new revocation revokes"


def test_a_replayed_take_back_does_not_take_a_later_correction_back(core: Core) -> None:
    """The event that took a stored correction back stores no content version: replayed after
    a newer correction, it must not take that one back too."""
    original = event("RP-11", score="100")
    ingest(core, original)
    flush(core)
    assert ingest_one(core, scored(original, "200")).outcome == "correction_stored"
    take_back = replay(original)
    assert ingest_one(core, take_back).outcome == "updated"
    assert ingest_one(core, scored(original, "300")).outcome == "correction_stored"

    assert ingest_one(core, copy.deepcopy(take_back)).outcome == "unchanged"
    detail = record(core, "RP-11")
    assert detail["correction_pending"] is True
    assert detail["correction"]["score"] == "300"


def test_a_second_revocation_answered_unchanged_is_known_when_replayed(core: Core) -> None:
    """Revoked twice (the second answered `unchanged`), reinstated by the operator, then the
    platform's log replayed: neither revocation revokes again."""
    first = revoked_event(record_id="RP-12")
    second = dict(copy.deepcopy(first), event_id="second-emission")
    outcomes = ingest(core, event("RP-12"), first, second)
    assert [r.outcome for r in outcomes] == ["created", "withdrawn", "unchanged"]
    core.operations.reinstate(["RP-12"], "revoked by mistake")

    replayed = ingest(core, copy.deepcopy(first), copy.deepcopy(second))
    assert [r.outcome for r in replayed] == ["unchanged", "unchanged"]
    assert record(core, "RP-12")["status"] == "pending"


def test_a_replayed_revocation_does_not_undo_a_later_correction(core: Core) -> None:
    """Revoked, then delivered again with another content (the platform's own way back):
    replaying the revocation, and the first delivery, leaves the last word standing."""
    original = event("RP-7", score="100")
    revocation = revoked_event(record_id="RP-7")
    corrected = scored(original, "200")
    outcomes = ingest(core, original, revocation, corrected)
    assert [r.outcome for r in outcomes] == ["created", "withdrawn", "updated"]

    replayed = ingest(core, copy.deepcopy(original), copy.deepcopy(revocation))
    assert [r.outcome for r in replayed] == ["unchanged", "unchanged"]
    assert (record(core, "RP-7")["status"], score_of(core, "RP-7")) == ("pending", "200")


def test_a_replayed_revocation_of_a_record_the_cdc_holds(core: Core, shared_dir: Path) -> None:
    """Accepted, revoked, reinstated by the operator: the revocation replayed cuts no
    SUPPRESSION."""
    original = event("RP-8")
    accepted(core, shared_dir, original)
    revocation = revoked_event(record_id="RP-8")
    assert ingest_one(core, revocation).outcome == "revocation_flagged"
    core.operations.reinstate(["RP-8"], "revoked by mistake")

    assert ingest_one(core, copy.deepcopy(revocation)).outcome == "unchanged"
    assert record(core, "RP-8")["revocation_pending"] is False
    assert not flush(core).cut


def test_a_record_of_another_certifier_is_refused_as_before(core: Core) -> None:
    """A replay is the record's own certifier's: an event of another is refused first."""
    original = event("RP-9")
    ingest(core, original, scored(original, "200"))
    elsewhere = dict(copy.deepcopy(original), certifier="school")
    assert ingest_one(core, elsewhere).outcome == "refused"


async def test_an_http_retry_answered_late_undoes_nothing(
    core_paths: tuple[Core, bool],
) -> None:
    """The retry of a request the service had answered, arriving after the correction that
    followed it, through each of the HTTP service's writer paths."""
    async with service(core_paths) as client:
        original = event("RP-10", score="100")
        assert (await post(client, original, ANY))[0] == 201
        assert (await post(client, scored(original, "200"), ANY))[1]["outcome"] == "updated"
        status, answer = await post(client, original, ANY)
        assert (status, answer["outcome"]) == (200, "unchanged")
        _, detail = await get(client, "/records/RP-10")
        assert detail["version"] == 2


def test_a_file_ingested_twice_leaves_the_corrections(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    firsts = [recent(f"RF-{n}", score="100") for n in range(3)]
    monday = write_jsonl(tmp_path / "monday.jsonl", firsts)
    tuesday = write_jsonl(tmp_path / "tuesday.jsonl", [scored(e, "200") for e in firsts])
    run(config, "ingest", str(monday))
    run(config, "ingest", str(tuesday))

    out = run(config, "ingest", str(monday)).stdout
    assert re.search(r"\(unchanged 3\)", out), out
    shown = json.loads(run(config, "show", "RF-1", "--format", "json").stdout)
    assert shown["version"] == 2
    assert "(event " in run(config, "show", "RF-1").stdout, "the history names the events"


def test_an_upgraded_state_remembers_the_revocations_its_history_names(tmp_path: Path) -> None:
    """m190 over a state of before it: the revocations the history names (since m160) are
    remembered, so one replayed after `reinstate` is known."""
    config = write_config(tmp_path)
    built = core_for(tmp_path)
    revocation = revoked_event(record_id="UP-3")
    try:
        ingest(built, event("UP-3"), revocation)
    finally:
        built.close()
    as_before(config, ("m190_taken_events",), "DROP TABLE taken_events")

    built = core_for(tmp_path)
    try:
        built.operations.reinstate(["UP-3"], "by mistake")
        assert ingest_one(built, revocation).outcome == "unchanged"
        assert record(built, "UP-3")["status"] == "pending"
    finally:
        built.close()


def test_an_upgraded_state_knows_the_revocations_from_now_on(tmp_path: Path) -> None:
    """m160 over a state of before it: the history gains its event ids (none for what came
    before); a revocation applied since is known when replayed."""
    config = write_config(tmp_path)
    built = core_for(tmp_path)
    try:
        ingest(built, event("UP-1"), revoked_event(record_id="UP-1"), event("UP-2"))
    finally:
        built.close()
    as_before(config, ("m160_history_event_ids",), "ALTER TABLE history DROP COLUMN event_id")

    built = core_for(tmp_path)
    try:
        assert [h["event_id"] for h in history(built, "UP-1")] == [None, None]
        revocation = revoked_event(record_id="UP-2")
        ingest(built, revocation)
        built.operations.reinstate(["UP-2"], "by mistake")
        assert ingest_one(built, revocation).outcome == "unchanged"
        stored = rows(built, "SELECT count(*) AS n FROM history WHERE event_id IS NOT NULL")
        assert stored[0]["n"] == 1
        _, path = only_written(flush(built))
        assert set(passages(path)) == {"UP-2"}
    finally:
        built.close()
