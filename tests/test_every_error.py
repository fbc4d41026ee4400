"""An invalid event is answered with every error at once (CONTRACT §1), not one field's.

The rules across fields (a code of the wrong type, a delivery in the future, a NIR's key)
ran only on an event whose every field was valid on its own: one wrong `exam.mode` hid the
three others, and a platform found them one resubmission at a time (the HTTP review of
session 14 reproduced it with `POST /check`).
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from accrochage.models.decode import decode
from tests.factories import delivered_event
from tests.test_decoding import registry

TODAY = date(2026, 12, 1)
WRONG_KEY_NIR = "193057510812345"


def several_wrong(**changes: Any) -> dict[str, Any]:
    event = delivered_event(
        record_id="E-1",
        certification={"type": "RNCP", "code": "RS6604"},  # an RS code said RNCP
        delivered_on="2027-06-01",  # after today
    )
    event["holder"]["nir"] = WRONG_KEY_NIR
    event.update(changes)
    return event


def fields(event: dict[str, Any]) -> list[str]:
    return [p.field for p in decode(json.dumps(event), registry(), TODAY).errors]


def test_the_rules_across_fields_run_beside_a_field_that_failed() -> None:
    across = ["certification.code", "delivered_on", "holder.nir"]
    assert fields(several_wrong()) == across
    assert fields(several_wrong(exam={"mode": "BOGUS"})) == ["exam.mode", *across]
    assert fields(several_wrong(exam={"mode": "BOGUS"}, colour="blue")) == [
        "exam.mode",
        "colour",
        *across,
    ]
    assert fields(several_wrong(event_id=7)) == ["event_id", *across]


def test_a_field_set_aside_is_never_blamed_by_a_rule() -> None:
    """The holder's `sex` failing on its own: the rule 'holder or cpf_file is required' would
    blame a holder left out whole; only `sex` is set aside, so the NIR's key is still judged."""
    event = several_wrong()
    event["holder"]["sex"] = "X"
    assert fields(event) == ["holder.sex", "certification.code", "delivered_on", "holder.nir"]


def test_a_holder_that_is_not_an_object_hides_only_its_own_rules() -> None:
    assert fields(several_wrong(holder="Haba")) == ["holder", "certification.code", "delivered_on"]


def findings(event: dict[str, Any]) -> tuple[list[str], list[str]]:
    decoded = decode(json.dumps(event), registry(), TODAY)
    return [p.field for p in decoded.errors], [p.field for p in decoded.warnings]


def test_a_field_failing_inside_an_object_leaves_its_neighbours_rules_to_run() -> None:
    """A field that failed set its whole top-level object aside: a wrong `holder.sex` hid a
    NIR's key, an empty `first_names` a birth after the delivery, an empty `exam.mode` an
    exam that ends before it starts (the HTTP review of session 17)."""
    base = delivered_event(record_id="N-1")

    event = delivered_event(record_id="N-1")
    event["holder"].update(nir=WRONG_KEY_NIR, usage_name="")
    assert findings(event)[0] == ["holder.usage_name", "holder.nir"]

    event = delivered_event(record_id="N-1")
    event["holder"].update(birth_date="2026-11-30", first_names=[])
    assert findings(event)[0] == ["holder.first_names", "holder.birth_date"]

    event = delivered_event(record_id="N-1")
    event["holder"]["birth_place"] = {"insee_code": "75056", "postal_code": "75002", "city": ""}
    assert findings(event)[0] == ["holder.birth_place.city", "holder.birth_place.postal_code"]

    event = delivered_event(record_id="N-1")
    event["exam"] = {**base["exam"], "start": "2026-11-12", "end": "2026-11-10", "mode": "X"}
    assert findings(event)[0] == ["exam.mode", "exam.end"]

    event = delivered_event(record_id="N-1")
    event["registration"] = {**base["registration"], "vae_path": "VAE_CLASSIQUE", "initiative": "?"}
    errors, warnings = findings(event)
    assert (errors, warnings) == (["registration.initiative"], ["registration.vae_path"])


def test_a_rule_never_judges_a_stand_in() -> None:
    """The failed field stands in for itself with a value of its own: the rules that read it
    do not run (a birth date that failed would be judged as 1 January 2000)."""
    event = delivered_event(record_id="N-2", delivered_on="1999-06-01")
    event["holder"]["birth_date"] = "1999-02-30"
    event["exam"] = {"start": "1999-06-01", "end": "1999-06-01"}
    event["registration"] = {**event["registration"], "date": "1999-05-01"}
    assert findings(event)[0] == ["holder.birth_date"]
    event["holder"]["sex"] = "?"
    event["holder"]["nir"] = "193057510812345"  # its key is wrong; sex and birth unknown
    assert findings(event) == (["holder.birth_date", "holder.sex", "holder.nir"], [])


def test_a_failing_field_the_rules_read_leaves_out_only_the_rules_that_read_it() -> None:
    """A delivery date or a certification that failed on its own stands in for itself: the
    rules that read it do not run, the others do (a missing `delivered_on` hid a wrong
    NIR key and a code of the other type)."""
    assert fields(several_wrong(delivered_on="someday")) == [
        "delivered_on",
        "certification.code",
        "holder.nir",
    ]
    assert fields(several_wrong(certification={"type": "RS"})) == [
        "certification.code",
        "delivered_on",
        "holder.nir",
    ]


def test_a_missing_delivery_date_no_longer_hides_a_missing_holder() -> None:
    event = delivered_event(record_id="E-4")
    del event["delivered_on"]
    del event["holder"]
    assert fields(event) == ["delivered_on", "holder"]
    del event["certification"]
    assert fields(event) == ["certification", "delivered_on", "holder"]


def test_no_rule_judges_a_stand_in() -> None:
    """Every rule that compares with the delivery date stays quiet when it failed: a
    validity end, a birth, an exam (a warning) after the stand-in's day would be blamed."""
    event = delivered_event(record_id="E-5", delivered_on="2026-13-45", valid_until="1999-01-01")
    event["holder"]["birth_date"] = "2005-03-04"
    event["exam"] = {"start": "2026-11-20", "end": "2026-11-21"}
    decoded = decode(json.dumps(event), registry(), TODAY)
    assert [p.field for p in decoded.errors] == ["delivered_on"]
    assert decoded.warnings == []
    kind = delivered_event(record_id="E-6", certification={"type": "RNCP", "code": 5})
    assert fields(kind) == ["certification.code"], "no 'RS1 does not match' about the stand-in"


def test_a_valid_event_is_decoded_as_before() -> None:
    decoded = decode(json.dumps(delivered_event(record_id="E-2")), registry(), TODAY)
    assert decoded.valid and decoded.errors == []


def test_the_warnings_come_with_them() -> None:
    """A plausibility warning (an exam after the delivery) beside a field that failed."""
    event = delivered_event(record_id="E-3", delivered_on="2026-11-01")
    event["exam"] = {"start": "2026-11-20"}
    event["colour"] = "blue"
    decoded = decode(json.dumps(event), registry(), TODAY)
    assert [p.field for p in decoded.errors] == ["colour"]
    assert [p.field for p in decoded.warnings] == ["exam.start"]


def test_a_malformed_code_does_not_blame_a_certifier_left_to_it() -> None:
    """No certifier given, a code of the wrong shape: the code's error only, not "certifier
    is required: no configured certifier delivers rs6604" (the code decides the certifier)."""
    for code in ("rs6604", "RS 6604", ""):
        event = delivered_event(record_id="E-7", certification={"type": "RS", "code": code})
        event.pop("certifier", None)
        assert fields(event) == ["certification.code"], code


def test_an_input_that_is_no_object_is_named_in_json_s_words() -> None:
    """`NaN`, `1e999` or `1.5` on a line were `got a JSON WrittenNumber` (the parser's class),
    `[...]` and `"..."` `got a JSON list` and `got a JSON str`: Python's names, not JSON's."""
    said = {
        text: decode(text, registry(), TODAY).errors[0].message
        for text in ("NaN", "1e999", "1.5", "12", "[1]", '"text"', "null", "true")
    }
    assert said == {
        "NaN": "expected a JSON object, got a number",
        "1e999": "expected a JSON object, got a number",
        "1.5": "expected a JSON object, got a number",
        "12": "expected a JSON object, got a number",
        "[1]": "expected a JSON object, got an array",
        '"text"': "expected a JSON object, got a string",
        "null": "expected a JSON object, got null",
        "true": "expected a JSON object, got true or false",
    }
