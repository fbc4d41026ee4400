"""Ingest tokens scoped to certifiers: an exam platform sends for its certifiers only.

A platform's token scoped to `pix` must not create, correct or revoke a record of `school`,
nor learn which certifier holds a record id; what it sends anyway is refused (403, the field
named) and kept in the unusable log for the operator. Through the writer thread, the writer
process `accrochage run` uses, and the decode processes large arrays go through.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from accrochage.api import schemas as s
from accrochage.api.refused_lines import REFUSED_LINES, REFUSED_LOGGED_EVERY, RefusedLines
from accrochage.api.server import POOL_MIN_EVENTS
from accrochage.app import Core, build_core
from accrochage.errors import ConfigError
from accrochage.models.deadline import SystemClock
from accrochage.runtimes.embedded import build_service
from accrochage.settings import load_settings
from accrochage.streams.doctor_config import token_findings
from accrochage.streams.findings import Level
from tests.factories import revoked_event
from tests.test_cli_tracker import run
from tests.test_http import recent
from tests.test_http_writer_process import serving as serving_app
from tests.test_metrics import counter, scrape
from tests.test_tracker import write_config

OPERATOR = "operator-token-0123456789-abcdefghij"
PIX_PLATFORM = "pix-platform-token-0123456789-abcdef"
ANY_PLATFORM = "any-platform-token-0123456789-abcdef"
SCOPED_API = {
    "token": OPERATOR,
    "ingest_tokens": [{"token": PIX_PLATFORM, "certifiers": ["pix"]}, ANY_PLATFORM],
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


PIX, ANY, OP = bearer(PIX_PLATFORM), bearer(ANY_PLATFORM), bearer(OPERATOR)


async def post(
    client: aiohttp.ClientSession, body: Any, headers: dict[str, str], path: str = "/events"
) -> tuple[int, Any]:
    sent = {"Content-Type": "application/json", **headers}
    async with client.post(path, data=json.dumps(body), headers=sent) as response:
        return response.status, await response.json()


async def get(client: aiohttp.ClientSession, path: str) -> tuple[int, Any]:
    async with client.get(path, headers=OP) as response:
        return response.status, await response.json()


@pytest.fixture(params=["thread", "process", "decode-processes"])
def core(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Core, bool]]:
    """A core with a pix-scoped and an open ingest token, and whether its writer is a process."""
    ingest = {"decode_processes": 1} if request.param == "decode-processes" else {}
    built = build_core(
        load_settings(write_config(tmp_path, api=SCOPED_API, ingest=ingest)), SystemClock()
    )
    yield built, request.param == "process"
    built.close()


@asynccontextmanager
async def service(core: tuple[Core, bool]) -> AsyncIterator[aiohttp.ClientSession]:
    built, separate = core
    async with serving_app(build_service(built, timer=False, separate_writer=separate)) as client:
        yield client


def no_other_certifier(answer: Any) -> None:
    """Nothing in an answer to the pix platform names another certifier or its records' state."""
    said = json.dumps(answer)
    assert "school" not in said and "configured" not in said, said


async def test_a_scoped_token_sends_for_its_certifier_only(core: tuple[Core, bool]) -> None:
    before = scrape(core[0].metrics)
    async with service(core) as client:
        status, answer = await post(client, recent("PX-1"), PIX)
        assert (status, answer["status"]) == (201, "pending")

        status, answer = await post(client, recent("SC-NEW", certifier="school"), PIX)
        assert status == 403, answer
        assert [e["field"] for e in answer["errors"]] == ["certifier"]
        assert "'pix'" in answer["errors"][0]["message"]
        assert answer["status"] is None and answer["outcome"] == "forbidden"
        no_other_certifier(answer)
        assert (await get(client, "/records/SC-NEW"))[0] == 404, "nothing created"

        status, answer = await post(client, recent("SC-1", certifier="school"), OP)
        assert status == 201
        _, before_record = await get(client, "/records/SC-1")

        # A correction of the school's record, sent as pix: refused, without naming its owner.
        taken = recent("SC-1")
        status, answer = await post(client, taken, PIX)
        assert status == 403, answer
        assert [e["field"] for e in answer["errors"]] == ["record_id"]
        assert answer["status"] is None
        no_other_certifier(answer)
        status, answer = await post(client, recent("SC-1", certifier="school"), PIX)
        assert status == 403 and answer["errors"][0]["field"] == "certifier"
        no_other_certifier(answer)

        status, answer = await post(client, revoked_event(record_id="SC-1"), PIX)
        assert status == 403, answer
        no_other_certifier(answer)
        _, after_record = await get(client, "/records/SC-1")
        assert after_record == before_record, "the school's record is untouched"

        # An array: each event its own answer, the pix one stored.
        batch = [recent("PX-2"), recent("SC-2", certifier="school")]
        status, answers = await post(client, batch, PIX)
        assert status == 200
        assert [a["http_status"] for a in answers] == [201, 403]
        assert (await get(client, "/records/PX-2"))[0] == 200
        assert (await get(client, "/records/SC-2"))[0] == 404

        # The operator sees every refused event in the unusable log.
        status, kept = await get(client, "/unusable")
        refused = [e for e in kept["events"] if e["record_id"] in ("SC-NEW", "SC-1", "SC-2")]
        assert len(refused) == 5
        assert all(e["errors"][0]["field"] in ("certifier", "record_id") for e in refused)
        # Which token sent them (its place in api.ingest_tokens, never its value).
        assert {e["source"] for e in refused} == {"http:127.0.0.1 (api.ingest_tokens #1)"}

        # An open token and the operator's send for any certifier, as before.
        status, _ = await post(client, recent("SC-3", certifier="school"), ANY)
        assert status == 201
        corrected = recent("SC-1", certifier="school")
        corrected["holder"]["birth_name"] = "Autre-Nom"
        status, answer = await post(client, corrected, OP)
        assert (status, answer["outcome"]) == (201, "updated")
    after = scrape(core[0].metrics)
    name = "accrochage_events_total"
    assert counter(after, name, "forbidden") - counter(before, name, "forbidden") == 5


async def test_a_large_array_keeps_its_scope_through_the_decode_processes(
    core: tuple[Core, bool],
) -> None:
    built, _ = core
    events = [recent(f"PXA-{i:03d}") for i in range(POOL_MIN_EVENTS)]
    events[3] = recent("SCA-003", certifier="school")
    async with service(core) as client:
        status, answers = await post(client, events, PIX)
    assert status == 200
    statuses = [a["http_status"] for a in answers]
    assert statuses[3] == 403 and statuses.count(201) == POOL_MIN_EVENTS - 1
    with built.store.reading() as reader:
        assert reader.record_holders(["SCA-003", "PXA-000"]) == {"PXA-000": ("pix", False)}


async def test_check_applies_the_scope_without_naming_the_owner(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    built = build_core(load_settings(write_config(tmp_path, api=SCOPED_API)), SystemClock())
    try:
        async with serving_app(build_service(built, timer=False)) as client:
            assert (await post(client, recent("SC-1", certifier="school"), OP))[0] == 201
            bodies = [recent("PX-OK"), recent("SC-9", certifier="school"), recent("SC-1")]
            with caplog.at_level(logging.WARNING, logger="accrochage.api"):
                status, found = await post(client, bodies, PIX, path="/check")
                assert (await post(client, recent("SC-1"), PIX))[0] == 403
            assert status == 200
            assert [f["valid"] for f in found] == [True, False, False]
            assert found[1]["errors"][0]["field"] == "certifier"
            assert found[2]["errors"][0]["field"] == "record_id"
            no_other_certifier(found[2])
            probing, sent = [r.getMessage() for r in caplog.records if r.name == "accrochage.api"]
            assert probing.startswith("api.ingest_tokens #1: /check refused 2 of 3 event(s)")
            assert sent.startswith("api.ingest_tokens #1: /events refused 1 of 1 event(s)")
            for message in (probing, sent):
                assert "SC-" not in message and "school" not in message
                assert PIX_PLATFORM not in message
            status, found = await post(client, recent("SC-1"), ANY, path="/check")
            assert "'school'" in found["errors"][0]["message"], "an open token: as before"
    finally:
        built.close()


async def test_refused_events_are_logged_once_a_while_saying_how_many(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A platform probing another certifier's record ids, a request each, writes one line
    every few seconds (by token and route) that counts them, not a line a request."""
    built = build_core(load_settings(write_config(tmp_path, api=SCOPED_API)), SystemClock())
    now = [0.0]
    try:
        app = build_service(built, timer=False)
        app[REFUSED_LINES] = RefusedLines(clock=lambda: now[0])
        async with serving_app(app) as client:
            with caplog.at_level(logging.WARNING, logger="accrochage.api"):
                for n in range(20):
                    body = recent(f"SC-{n}", certifier="school")
                    assert (await post(client, body, PIX))[0] == 403
                    assert (await post(client, [body, recent(f"PX-{n}")], PIX, "/check"))[0] == 200
                now[0] = REFUSED_LOGGED_EVERY
                assert (await post(client, recent("SC-X", certifier="school"), PIX))[0] == 403
            lines = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
            assert len(lines) == 3, lines
            assert lines[0].startswith("api.ingest_tokens #1: /events refused 1 of 1 event(s): ")
            assert lines[1].startswith("api.ingest_tokens #1: /check refused 1 of 2 event(s): ")
            assert lines[2].startswith(
                "api.ingest_tokens #1: /events refused 20 of 20 event(s) in 20 requests since "
                "the last such line: "
            )
    finally:
        built.close()


def test_a_scoped_token_needs_the_operators(tmp_path: Path) -> None:
    """Without `api.token` every read route answers without a token: a scoped platform
    would read the records of every certifier."""
    scoped = {"ingest_tokens": [{"token": PIX_PLATFORM, "certifiers": ["pix"]}]}
    with pytest.raises(ConfigError, match=r"api\.token is required with an ingest token scoped"):
        load_settings(write_config(tmp_path, api=scoped))


@pytest.mark.parametrize(
    ("api", "place"),
    [
        (
            {
                "token": PIX_PLATFORM,
                "ingest_tokens": [{"token": PIX_PLATFORM, "certifiers": ["pix"]}],
            },
            "#1 is the same token as api.token",
        ),
        (
            {
                "token": OPERATOR,
                "ingest_tokens": [{"token": PIX_PLATFORM, "certifiers": ["pix"]}, PIX_PLATFORM],
            },
            "#2 is the same token as api.ingest_tokens #1",
        ),
        (
            {"token": OPERATOR, "ingest_tokens": [ANY_PLATFORM, ANY_PLATFORM]},
            "#2 is the same token as api.ingest_tokens #1",
        ),
    ],
)
def test_a_token_given_to_two_senders_is_refused(
    tmp_path: Path, api: dict[str, Any], place: str
) -> None:
    """Given twice, the operator's token won over a platform's (its scope lost: every
    certifier's records readable) and a bare one over a scoped one: refused, naming where."""
    with pytest.raises(ConfigError, match=f"api.ingest_tokens {place}") as raised:
        load_settings(write_config(tmp_path, api=api))
    assert PIX_PLATFORM not in str(raised.value) and ANY_PLATFORM not in str(raised.value)


def test_scoped_tokens_in_the_configuration(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, api=SCOPED_API))
    scopes = [(t.get_secret_value(), s) for t, s in settings.api.ingest_scopes]
    assert scopes == [(PIX_PLATFORM, frozenset({"pix"})), (ANY_PLATFORM, None)]
    assert PIX_PLATFORM not in repr(settings), "a token is a secret"

    cases = [
        ({"token": PIX_PLATFORM, "certifiers": ["nobody"]}, "'nobody', not a configured"),
        ({"token": PIX_PLATFORM, "certifiers": []}, "certifiers"),
        ({"token": "short", "certifiers": ["pix"]}, "at least 32 characters"),
        ({"token": PIX_PLATFORM, "certifier": ["pix"]}, "certifier"),
    ]
    for token, message in cases:
        with pytest.raises(ConfigError, match=message) as raised:
            load_settings(write_config(tmp_path, api={"token": OPERATOR, "ingest_tokens": [token]}))
        assert PIX_PLATFORM not in str(raised.value)


def test_scoped_tokens_from_the_environment(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv(
        "ACCROCHAGE_API__INGEST_TOKENS",
        json.dumps([{"token": PIX_PLATFORM, "certifiers": ["school", "pix"]}]),
    )
    settings = load_settings(write_config(tmp_path, api={"token": OPERATOR}))
    assert [s for _, s in settings.api.ingest_scopes] == [frozenset({"pix", "school"})]


def test_doctor_warns_of_a_token_open_to_every_certifier(tmp_path: Path) -> None:
    (finding,) = token_findings(load_settings(write_config(tmp_path, api=SCOPED_API)))
    assert finding.level is Level.WARNING and "api.ingest_tokens #2 may" in finding.message
    assert ANY_PLATFORM not in finding.message and "certifiers = [" in finding.message
    scoped = {"token": OPERATOR, "ingest_tokens": [{"token": PIX_PLATFORM, "certifiers": ["pix"]}]}
    (finding,) = token_findings(load_settings(write_config(tmp_path, api=scoped)))
    assert finding.level is Level.OK
    assert token_findings(load_settings(write_config(tmp_path))) == []
    open_reads = {"ingest_tokens": [ANY_PLATFORM]}
    (finding,) = token_findings(load_settings(write_config(tmp_path, api=open_reads)))
    assert finding.needs_operator and "set api.token" in finding.message


async def test_a_record_without_a_certifier_is_no_scoped_senders(core: tuple[Core, bool]) -> None:
    """An invalid event that named no certifier (from an open token, a file, Kafka) leaves a
    record without one: a scoped platform may neither correct nor revoke it (it would become
    its certifier's and go to the CDC under its contract)."""
    orphan = recent("OR-1", certifier="school")
    del orphan["certifier"]
    orphan["certification"] = {"type": "RNCP", "code": "RNCP3572"}  # school's code, mistyped
    async with service(core) as client:
        status, answer = await post(client, orphan, ANY)
        assert (status, answer["status"]) == (422, "invalid")
        _, before = await get(client, "/records/OR-1")
        assert before["certifier"] is None

        status, answer = await post(client, recent("OR-1"), PIX)
        assert status == 403 and [e["field"] for e in answer["errors"]] == ["record_id"]
        assert answer["outcome"] == "forbidden", "not 'updated': nothing says it exists"
        status, answer = await post(client, revoked_event(record_id="OR-1"), PIX)
        assert status == 403
        assert (await get(client, "/records/OR-1"))[1] == before

        fixed = recent("OR-1", certifier="school")
        status, answer = await post(client, fixed, ANY)
        assert (status, answer["status"]) == (201, "pending"), "its own platform corrects it"


async def test_no_answer_to_a_scoped_token_names_another_certifier(
    core: tuple[Core, bool],
) -> None:
    """An unknown key, a code of another certifier given without a certifier, a revocation
    of a code another certifier delivers: refused without the list of configured keys, nor
    which certifier delivers the code."""
    unknown = recent("LK-1", certifier="zz")
    by_code = recent("LK-2", certifier="school")
    del by_code["certifier"]
    revoking = revoked_event(record_id="LK-3", certification={"type": "RNCP", "code": "RNCP35726"})
    async with service(core) as client:
        for body in (unknown, by_code, revoking, [unknown, by_code]):
            for path in ("/events", "/check"):
                status, answer = await post(client, body, PIX, path=path)
                assert status in (200, 403, 422), (path, status, answer)
                no_other_certifier(answer)
        # Nor whether another certifier delivers a code: one answer for that code and for
        # one no certifier here delivers (it said "the certifier its certification code is
        # for is another").
        status, answer = await post(client, by_code, PIX)
        nobody = recent("LK-4", certification={"type": "RNCP", "code": "RNCP99999"})
        del nobody["certifier"]
        _, nobodys = await post(client, nobody, PIX)
        assert answer["errors"] == nobodys["errors"], (answer, nobodys)
        assert "name the event's certifier" in answer["errors"][0]["message"]


def test_a_file_of_one_certifier_s_platform_is_scoped_like_its_token(tmp_path: Path) -> None:
    """`ingest` had no scope: a row of school's export naming a pix record withdrew it. With
    `--certifier school` the file is read as school's token would send it, in the decode
    processes too (a file of 1,000 events)."""
    from click.testing import CliRunner

    from accrochage.cli import main
    from accrochage.generate import GeneratedCertifier, generate_events

    config = write_config(tmp_path, ingest={"decode_processes": 1})
    today = SystemClock().now().date()
    pix = [GeneratedCertifier("pix", ("RS5875",))]
    pix_events = list(generate_events(1000, pix, today=today, seed=3, max_age_days=10))
    first = tmp_path / "pix.jsonl"
    first.write_text("".join(json.dumps(e) + "\n" for e in pix_events), encoding="utf-8")

    def ingest(*args: str) -> str:
        done = CliRunner().invoke(main, ["--config", str(config), "ingest", *args])
        assert done.exit_code == 0, done.output
        return done.output

    said = ingest("--certifier", "school", str(first))
    assert "not theirs: 1000" in said, said
    ingest(str(first))  # pix's own file: stored
    target = pix_events[0]["record_id"]
    school_file = tmp_path / "school.jsonl"
    school_file.write_text(
        json.dumps(revoked_event(record_id=target, certifier="pix"))
        + "\n"
        + json.dumps(recent("SCHOOL-1", certifier="school"))
        + "\n",
        encoding="utf-8",
    )
    said = ingest("--certifier", "school", str(school_file))
    assert "not theirs: 1" in said and "created 1" in said, said
    # No token here: the refusal names the sender, whether a token or `--certifier`
    assert f"{target} certifier: this sender sends events for 'school' only, and the" in said, said
    core = build_core(load_settings(config))
    try:
        with core.store.reading() as reader:
            assert reader.record_detail(target, core.clock.now().date())["status"] == "pending"
    finally:
        core.close()
    wrong = CliRunner().invoke(
        main, ["--config", str(config), "ingest", "--certifier", "nobody", str(first)]
    )
    assert wrong.exit_code == 2 and "not a configured certifier key" in wrong.output


async def read_as(client: aiohttp.ClientSession, path: str, headers: dict[str, str]) -> Any:
    async with client.get(path, headers=headers) as response:
        return response.status, await response.json()


async def test_a_scoped_platform_reads_its_records_fate_without_personal_data(
    core: tuple[Core, bool],
) -> None:
    """A platform learnt of a record only what its POST answered: later batches, the CDC's
    verdict, a rejection to correct were the operator's to see."""
    async with service(core) as client:
        mine = recent("PF-1")
        mine["holder"]["nir"] = "193057505612384"
        assert (await post(client, mine, PIX))[0] == 201
        assert (await post(client, recent("PF-BAD", obtention="PAR_HASARD"), PIX))[0] == 422
        assert (await post(client, recent("SC-PF", certifier="school"), OP))[0] == 201

        status, record = await read_as(client, "/records/PF-1", PIX)
        assert status == 200, record
        assert (record["record_id"], record["status"], record["certifier"]) == (
            "PF-1",
            "pending",
            "pix",
        )
        assert record["deadline"] and record["history"][0]["to_status"] == "pending"
        said = json.dumps(record, ensure_ascii=False)
        for personal in ("193057505612384", mine["holder"]["birth_name"], "birth", "holder"):
            assert personal not in said, personal
        assert set(record) == set(s.PlatformRecord.model_fields)
        s.PlatformRecord.model_validate(record)

        status, invalid = await read_as(client, "/records/PF-BAD", PIX)
        assert (status, invalid["status"]) == (200, "invalid")
        assert [e["field"] for e in invalid["errors"]] == ["obtention"]

        for hidden in ("/records/SC-PF", "/records/NOWHERE"):
            status, answer = await read_as(client, hidden, PIX)
            assert (status, answer["error"]["code"]) == (404, "not_found"), hidden
        no_other_certifier(await read_as(client, "/records/SC-PF", PIX))

        status, page = await read_as(client, "/records?status=pending&status=invalid", PIX)
        assert status == 200
        assert sorted(r["record_id"] for r in page["records"]) == ["PF-1", "PF-BAD"]
        assert all(set(r) == set(s.PlatformRow.model_fields) for r in page["records"])
        no_other_certifier(page)
        status, answer = await read_as(client, "/records?certifier=school", PIX)
        assert (status, answer["error"]["code"]) == (403, "forbidden")
        no_other_certifier(answer)

        for path in ("/records/PF-1", "/records", "/batches", "/summary"):
            status, answer = await read_as(client, path, ANY)
            assert status == 403, "a token open to every certifier reads nothing"
        for path in ("/batches", "/summary", "/unusable", "/correction-requests"):
            status, _ = await read_as(client, path, PIX)
            assert status == 403, path
        for platform in (PIX, ANY):
            status, described = await read_as(client, "/openapi.json", platform)
            assert status == 200 and "/events" in described["paths"]

        status, full = await read_as(client, "/records/PF-1", OP)
        assert full["content"]["holder"]["nir"] == "193057505612384", "the operator's view"


async def test_a_platform_may_ask_for_the_head_of_what_it_may_get(
    core: tuple[Core, bool],
) -> None:
    """aiohttp answers HEAD on every GET route: a scoped platform's HEAD of its own record,
    or any platform's of the routes' description, was 403 while the GET answered."""
    async with service(core) as client:
        assert (await post(client, recent("PH-1"), PIX))[0] == 201
        assert (await post(client, recent("SC-PH", certifier="school"), OP))[0] == 201
        heads = {
            (token, path): await head(client, path, token)
            for token, path in [
                (PIX_PLATFORM, "/records/PH-1"),
                (PIX_PLATFORM, "/records"),
                (PIX_PLATFORM, "/records/SC-PH"),
                (PIX_PLATFORM, "/openapi.json"),
                (ANY_PLATFORM, "/openapi.json"),
                (PIX_PLATFORM, "/summary"),
                (ANY_PLATFORM, "/records/PH-1"),
            ]
        }
    assert heads == {
        (PIX_PLATFORM, "/records/PH-1"): 200,
        (PIX_PLATFORM, "/records"): 200,
        (PIX_PLATFORM, "/records/SC-PH"): 404,
        (PIX_PLATFORM, "/openapi.json"): 200,
        (ANY_PLATFORM, "/openapi.json"): 200,
        (PIX_PLATFORM, "/summary"): 403,
        (ANY_PLATFORM, "/records/PH-1"): 403,
    }


async def head(client: aiohttp.ClientSession, path: str, token: str) -> int:
    async with client.head(path, headers=bearer(token)) as response:
        return response.status


async def test_a_platform_reads_nothing_of_the_certifier_whose_invalid_record_it_took(
    core: tuple[Core, bool],
) -> None:
    """A valid pix event takes the id of a school record that never passed validation: the
    pix platform read the school platform's earlier events (their times, ids, statuses)."""
    async with service(core) as client:
        school = recent("TK-1", certifier="school", obtention="PAR_HASARD")
        school["event_id"] = "school-event-1"
        assert (await post(client, school, OP))[0] == 422
        assert (await post(client, school | {"event_id": "school-event-2"}, OP))[0] == 422
        assert (await post(client, recent("TK-1"), PIX))[0] == 201

        status, record = await read_as(client, "/records/TK-1", PIX)
        assert (status, record["certifier"], record["status"]) == (200, "pix", "pending")
        assert [(e["from_status"], e["to_status"]) for e in record["history"]] == [
            (None, "pending")
        ]
        assert "school" not in json.dumps(record)
        status, full = await read_as(client, "/records/TK-1", OP)
        assert [(e["from_status"], e["to_status"]) for e in full["history"]] == [
            (None, "invalid"),
            ("invalid", "pending"),
        ], "the operator reads the whole history"


async def test_a_taken_record_s_version_counts_from_the_taking_for_its_platform(
    core: tuple[Core, bool],
) -> None:
    """The pix platform read version 3 on a record it had just created: the number told that
    another certifier had sent two contents under the id before it."""
    async with service(core) as client:
        school = recent("TK-V", certifier="school", obtention="PAR_HASARD")
        assert (await post(client, school | {"event_id": "school-1"}, OP))[0] == 422
        second = school | {"event_id": "school-2", "score": "12"}
        assert (await post(client, second, OP))[0] == 422
        assert (await post(client, recent("TK-V") | {"event_id": "pix-1"}, PIX))[0] == 201

        status, record = await read_as(client, "/records/TK-V", PIX)
        assert (status, record["version"]) == (200, 1)
        corrected = recent("TK-V") | {"event_id": "pix-2", "score": "13"}
        assert (await post(client, corrected, PIX))[0] == 201
        status, record = await read_as(client, "/records/TK-V", PIX)
        assert (status, record["version"]) == (200, 2)
        status, full = await read_as(client, "/records/TK-V", OP)
        assert full["version"] == 4, "the operator reads the stored version"


async def test_one_platform_s_unusable_events_are_listed_and_dismissed_apart(
    tmp_path: Path,
) -> None:
    """A platform's flood filed under another's certifier (it named that one's records) was
    dismissed with that certifier's own unusable events, or not at all: `sender` picks the
    events of one token, as the service's log names it."""
    config = write_config(tmp_path, api=SCOPED_API)
    built = build_core(load_settings(config), SystemClock())
    try:
        async with service((built, False)) as client:
            taken = {"type": "certification.delivered", "certifier": "school"}
            status, _ = await post(client, [taken, {"type": "x"}, "not an event"], PIX)
            assert status == 200
            status, _ = await post(
                client, [{"type": "y"}, {"type": "z", "certifier": "school"}], ANY
            )
            assert status == 200

            async def listed(**query: str) -> list[str | None]:
                async with client.get("/unusable", params=query, headers=OP) as response:
                    assert response.status == 200, await response.text()
                    return [e["source"] for e in (await response.json())["events"]]

            assert len(await listed()) == 5
            pix_ones = await listed(sender="api.ingest_tokens #1")
            assert len(pix_ones) == 3 and all(
                s.endswith("(api.ingest_tokens #1)") for s in pix_ones
            )
            assert len(await listed(sender="#2")) == 2
            assert len(await listed(sender="#2", certifier="school")) == 1
            assert await listed(sender="operator") == []
            async with client.get("/unusable", params={"sender": "pix"}, headers=OP) as response:
                assert response.status == 400
                assert "api.ingest_tokens #N" in (await response.json())["error"]["message"]
    finally:
        built.close()
    ingested = tmp_path / "junk.jsonl"
    ingested.write_text('{"type": "from a file"}\n', encoding="utf-8")
    run(config, "ingest", str(ingested))

    def sources(*options: str) -> list[str]:
        shown = run(config, "unusable", "--format", "json", *options).stdout
        return [row["source"] for row in json.loads(shown)]

    assert len(sources("--sender", "#1")) == 3
    said = run(config, "dismiss-unusable", "--all-open", "--sender", "#1", "--note", "a loop")
    assert said.stdout.startswith("3 unusable event(s) dismissed")
    left = sources()
    assert len(left) == 3 and not any("#1)" in source for source in left), left
    assert any(source.startswith("junk.jsonl") or "junk.jsonl" in source for source in left)
    refused = run(
        config, "dismiss-unusable", "--all-open", "--sender", "pix", "--note", "x", code=2
    )
    assert "api.ingest_tokens #N" in refused.stderr
    refused = run(config, "dismiss-unusable", "1", "--sender", "#1", "--note", "x", code=2)
    assert "--all-open" in refused.stderr
