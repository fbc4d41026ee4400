"""What an exam platform is told: an event with errors is answered with them, whatever it did
to the record (nothing, here), and a refused event names no record's status."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from accrochage.app import Core
from accrochage.streams.incoming import Incoming
from tests.test_cdc_loop import flush
from tests.test_ingest_scope import ANY, post, service
from tests.test_ingest_scope import core as core_paths
from tests.test_replays import core
from tests.test_tracker import event, ingest, ingest_one, record, replay

__all__ = ["core", "core_paths"]


def without_event_id(original: dict[str, object]) -> dict[str, object]:
    bare = copy.deepcopy(original)
    del bare["event_id"]
    return bare


def test_the_same_content_with_errors_is_unchanged_and_answered_with_them(core: Core) -> None:
    original = event("AN-1")
    ingest(core, original)
    answer = ingest_one(core, without_event_id(original))
    assert (answer.outcome, answer.status) == ("unchanged", "pending")
    assert [e.field for e in answer.errors] == ["event_id"]
    assert answer.http_status == 422


def test_an_event_with_errors_takes_no_correction_back(core: Core) -> None:
    original = event("AN-2", score="100")
    ingest(core, original)
    flush(core)
    changed = replay(original)
    changed["score"] = "200"
    assert ingest_one(core, changed).outcome == "correction_stored"

    answer = ingest_one(core, without_event_id(original))
    assert answer.outcome == "unchanged" and [e.field for e in answer.errors] == ["event_id"]
    assert record(core, "AN-2")["correction_pending"] is True, "the correction stands"


async def test_a_refused_event_names_no_record_s_status(core_paths: tuple[Core, bool]) -> None:
    """school's record; pix's event for the same id through an open token: refused, its
    answer holding no status (the record is school's, and pending)."""
    async with service(core_paths) as client:
        assert (await post(client, event("AN-3", certifier="school"), ANY))[0] == 201
        status, answer = await post(client, event("AN-3"), ANY)
        assert (status, answer["outcome"], answer["status"]) == (422, "refused", None)


def test_a_revocation_naming_another_certification_revokes_nothing(core: Core) -> None:
    """The certification a revocation names is the platform's check that its record_id is
    the one it means: a mismatch is refused, saying so, and the record is untouched."""
    from tests.factories import revoked_event

    ingest(core, event("AN-4"))  # an RS5875 of pix
    wrong = revoked_event(record_id="AN-4", certification={"type": "RNCP", "code": "RNCP37873"})
    answer = ingest_one(core, wrong)
    assert (answer.outcome, answer.status) == ("refused", None)
    assert "record AN-4 is a certification RS5875, not RNCP37873" in answer.errors[0].message
    assert record(core, "AN-4")["status"] == "pending"

    mistyped = revoked_event(record_id="AN-4", certification={"type": "RS", "code": "RNCP37873"})
    answer = ingest_one(core, mistyped)
    assert answer.outcome == "unusable"
    assert "does not match certification.type RS" in answer.errors[0].message

    elsewhere = revoked_event(record_id="AN-4", certification={"type": "RNCP", "code": "RNCP35726"})
    answer = ingest_one(core, elsewhere)
    assert "RNCP35726 is not a certification of certifier 'pix'" in answer.errors[0].message
    assert "configured" not in answer.errors[0].message

    assert ingest_one(core, revoked_event(record_id="AN-4")).outcome == "withdrawn"


def test_the_outcomes_the_api_describes_are_those_ingest_answers() -> None:
    """docs/openapi.json enumerates `outcome` for platforms: the same words ingest uses."""
    from typing import get_args

    from accrochage.api.schemas import EventAnswer
    from accrochage.models.vocabulary import EVENT_ANSWERS

    described = set(get_args(EventAnswer.model_fields["outcome"].annotation))
    assert described == {o.value for o in EVENT_ANSWERS}


def test_an_event_the_code_fails_on_is_answered_alone_and_logged_with_its_trace(
    core: Core, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug met by one event of a group: the others are stored, and the log says where the
    code failed (the answer tells the sender to look there), never the event's values."""
    from accrochage.streams import ingest as ingest_module

    real = ingest_module.apply_delivered

    def bug(current: Any, decoded: Any, *args: Any) -> Any:
        if decoded.record_id == "BUG-2":
            raise KeyError("".join(["Zorg", "lubova"]))  # the value, not this line
        return real(current, decoded, *args)

    monkeypatch.setattr(ingest_module, "apply_delivered", bug)
    items = [Incoming(event(f"BUG-{n}")) for n in (1, 2, 3)]
    results = core.ingestor.ingest_each(items)
    assert [r.outcome for r in results] == ["created", "failed", "created"]
    (said,) = [r.getMessage() for r in caplog.records if "could not be stored" in r.getMessage()]
    assert "(KeyError, event 2 of its group)" in said
    assert "in bug" in said
    assert "Zorglubova" not in said
