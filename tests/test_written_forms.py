"""The same text written in other forms: Unicode's decomposed accents (a macOS export), invisible
characters, separators that only Python calls white space. One name is one content, whatever
system typed it; a text nobody can read is a field error, not a passage the CDC cannot match."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from accrochage.app import Core
from accrochage.models.text import WHITE_SPACE, Text60, trimmed
from accrochage.runtimes.embedded import build_service
from accrochage.streams.decoding import decode_lean
from accrochage.streams.incoming import Incoming
from tests.test_cdc_loop import accepted, flush, only_written
from tests.test_http_writer_process import serving
from tests.test_tracker import (
    NS,
    TODAY,
    event,
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


def named(record_id: str, birth_name: str, first_name: str) -> dict[str, Any]:
    one = event(record_id)
    one["holder"]["birth_name"] = birth_name
    one["holder"]["first_names"] = [first_name]
    return one


def nfd(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    assert decomposed != text
    return decomposed


def test_a_name_sent_again_decomposed_is_the_same_content(core: Core, shared_dir: Path) -> None:
    original = named("WF-1", "Lefèvre", "Hélène")
    accepted(core, shared_dir, original)
    again = replay(original)
    again["holder"]["birth_name"] = nfd("Lefèvre")
    again["holder"]["first_names"] = [nfd("Hélène")]

    assert ingest_one(core, again).outcome == "unchanged"
    assert record(core, "WF-1")["correction_pending"] is False
    assert outstanding(core) == []
    assert not flush(core).cut, "no SUPPRESSION of the passage the CDC rightly holds"


def test_a_decomposed_name_goes_to_the_cdc_composed(core: Core, shared_dir: Path) -> None:
    first = named("WF-2", nfd("Lefèvre"), nfd("Hélène"))
    assert ingest_one(core, first).outcome == "created"
    _, path = only_written(flush(core))
    holder = passages(path)["WF-2"]
    assert holder.findtext(".//cpf:nomNaissance", namespaces=NS) == "Lefèvre"
    assert holder.findtext(".//cpf:prenom1", namespaces=NS) == "Hélène"

    again = replay(first)
    again["holder"]["birth_name"] = "Lefèvre"
    again["holder"]["first_names"] = ["Hélène"]
    assert ingest_one(core, again).outcome == "unchanged"


def test_a_name_is_as_long_as_its_composed_form(core: Core) -> None:
    """30 accented letters are 60 code points decomposed: the XSD counts the 30 sent."""
    long_name = "é" * 30 + "e" * 30
    result = ingest_one(core, named("WF-3", nfd(long_name), "Anne"))
    assert result.outcome == "created" and not result.errors
    assert record(core, "WF-3")["status"] == "pending"


@pytest.mark.parametrize(
    "invisible",
    ["\u200b", "\ufeff", "\u0301", " \u200b\u200d ", "\u2060\u0301"],
    ids=["zero-width space", "byte order mark", "lone accent", "joiners", "word joiner"],
)
def test_a_name_with_nothing_visible_is_a_field_error(core: Core, invisible: str) -> None:
    result = ingest_one(core, named("WF-4", invisible, "Anne"))
    assert result.outcome == "created" and result.status == "invalid"
    (error,) = [e for e in result.errors if e.field == "holder.birth_name"]
    assert "no visible character" in error.message
    assert invisible.strip() not in error.message


def test_visible_text_around_invisible_characters_is_kept(core: Core) -> None:
    result = ingest_one(core, named("WF-5", "Dupont\u200b", "Anne"))
    assert result.status == "pending", result.errors


def test_a_record_id_ending_in_a_separator_never_changes_the_record_without_it(
    core: Core,
) -> None:
    """Python's `str.strip` takes U+001F as white space where the model keeps (and refuses) it:
    "R\\x1f" changed record "R" into an invalid one."""
    original = event("WF-6")
    assert ingest_one(core, original).status == "pending"
    hostile = replay(original)
    hostile["record_id"] = "WF-6\x1f"
    result = ingest_one(core, hostile)
    assert result.record_id != "WF-6"
    assert result.outcome == "unusable"
    assert any("U+001F" in e.message for e in result.errors)
    assert record(core, "WF-6")["status"] == "pending"


@pytest.mark.parametrize("char", [*WHITE_SPACE, "\x1c", "\x1d", "\x1e", "\x1f"])
def test_trimmed_trims_what_the_models_trim(char: str) -> None:
    text = f"{char}ab{char}"
    try:
        by_model = TypeAdapter(Text60).validate_python(text)
    except ValidationError:  # kept, then refused as a control character
        by_model = None
    assert (trimmed(text) == "ab") == (by_model == "ab")


@pytest.mark.parametrize("separate_writer", [False, True], ids=["in-process", "writer process"])
async def test_a_resend_in_other_words_is_unchanged_through_the_http_service(
    core: Core, shared_dir: Path, separate_writer: bool
) -> None:
    """`accrochage run` decodes an event where it serves and stores it in its writer process:
    only the lean decoded value crossed, without the event the comparison field by field
    needs, so every other writing of an accepted record (decomposed accents, a score as a
    number, a default given) was stored as a correction, and a SUPPRESSION cut for it."""
    original = named("WF-7", "Lefèvre", "Hélène")
    original["score"] = "300"
    accepted(core, shared_dir, original)
    again = replay(original)
    again["holder"]["birth_name"] = nfd("Lefèvre")
    again["score"] = 300
    again["certified"] = True
    app = build_service(core, timer=False, separate_writer=separate_writer)
    async with serving(app) as client, client.post("/events", json=again) as response:
        body = await response.json()
    assert (response.status, body["outcome"]) == (200, "unchanged"), body
    assert record(core, "WF-7")["correction_pending"] is False
    assert not flush(core).cut


def test_a_resend_in_other_words_is_unchanged_when_decoded_in_a_decode_process(
    core: Core, shared_dir: Path
) -> None:
    original = named("WF-8", "Lefèvre", "Hélène")
    accepted(core, shared_dir, original)
    again = replay(original)
    again["holder"]["first_names"] = [nfd("Hélène")]
    (lean,) = decode_lean([Incoming(json.dumps(again))], core.registry, TODAY, None)
    assert lean.decoded is not None and lean.decoded[0].event is None, "only the lean value"
    (result,) = core.ingestor.ingest([lean])
    assert result.outcome == "unchanged"
