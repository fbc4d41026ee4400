"""`GET /openapi.json` describes every route the service answers, with answers that are true.

The description is generated from the models of `api/schemas.py`; the real answers of a
running service are validated against those models (extra keys refused), so neither can drift.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter

from accrochage.api import schemas as s
from accrochage.api.connections import REFUSAL
from accrochage.api.openapi import openapi, openapi_text
from accrochage.api.route_table import ROUTES
from accrochage.app import Core
from accrochage.runtimes.embedded import build_service
from tests.test_http import core_for, recent, serving
from tests.test_tracker import NO_HOLDER, processed_report

DOCS = Path(__file__).resolve().parents[1] / "docs" / "openapi.json"


def test_the_saved_description_is_the_generated_one() -> None:
    assert DOCS.read_text(encoding="utf-8") == openapi_text(), (
        "docs/openapi.json is stale: run `accrochage openapi -o docs/openapi.json`"
    )


def test_every_route_the_service_answers_is_described(tmp_path: Path) -> None:
    core = core_for(tmp_path)
    try:
        app = build_service(core, timer=False)
        served = {
            (route.method.lower(), route.resource.canonical)
            for route in app.router.routes()
            if route.method != "HEAD" and route.resource is not None
        }
    finally:
        core.close()
    described = {(method, path) for path, ops in openapi()["paths"].items() for method in ops}
    assert served - described == set(), "routes the description misses"
    assert described - served == set(), "described routes the service does not have"


def test_the_description_is_openapi_3_1_with_the_event_schema() -> None:
    document = openapi()
    assert document["openapi"] == "3.1.0"
    schemas = document["components"]["schemas"]
    assert {"DeliveredEvent", "RevokedEvent", "RecordDetail", "ErrorBody"} <= set(schemas)
    events = document["paths"]["/events"]["post"]
    assert events["security"] and "requestBody" in events
    assert document["paths"]["/health"]["get"]["security"] == []
    json.dumps(document)


def answer_of(method: str, path: str, status: int) -> Any:
    """The answer the description gives a route for `status`."""
    (route,) = [r for r in ROUTES if (r.method, r.path) == (method, path)]
    return route.answers[status]


def valid(model: Any, body: Any) -> None:
    if isinstance(model, type) and issubclass(model, BaseModel):
        model.model_validate(body)
    else:
        TypeAdapter(model).validate_python(body)


async def test_the_answers_of_a_running_service_match_their_models(
    tmp_path: Path, shared_dir: Path
) -> None:
    core: Core = core_for(tmp_path)
    try:
        async with serving(core) as client:

            async def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
                kwargs: dict[str, Any] = {}
                if body is not None:
                    kwargs = {
                        "data": json.dumps(body),
                        "headers": {"Content-Type": "application/json"},
                    }
                async with client.request(method, path, **kwargs) as response:
                    return response.status, await response.json()

            sent = recent("OA-1")
            status, one = await call("POST", "/events", sent)
            assert status == 201
            valid(answer_of("post", "/events", 201), one)
            # The same event again: 200 and one answer, which the description said was an
            # array only.
            status, again = await call("POST", "/events", sent)
            assert status == 200 and again["outcome"] == "unchanged"
            valid(answer_of("post", "/events", 200), again)
            status, invalid = await call(
                "POST", "/events", recent("OA-BAD", delivered_on="2099-01-01")
            )
            assert status == 422
            valid(s.EventAnswer, invalid)
            status, many = await call("POST", "/events", [recent("OA-2"), {"no": "id"}])
            valid(list[s.EventAnswerInArray], many)
            status, checked = await call("POST", "/check", [recent("OA-3")])
            valid(list[s.CheckAnswer], checked)
            report = await asyncio.to_thread(core.flusher.flush, force=True)
            (written,) = report.written
            data = processed_report(
                shared_dir,
                file_name=written.path.name,
                id_flux=written.batch_id,
                ok=["OA-1"],
                ko={"OA-2": NO_HOLDER},
            )
            await asyncio.to_thread(core.feedback.import_report_bytes, data, "r.xml")
            answers = {
                "/records": s.RecordsPage,
                "/records?status=accepted&status=rejected": s.RecordsPage,
                "/records/OA-2": s.RecordDetail,
                "/records/OA-BAD": s.RecordDetail,
                "/batches": s.BatchList,
                f"/batches/{written.batch_id}": s.BatchDetail,
                "/summary": s.Summary,
                "/unusable": s.UnusableList,
                "/health": s.Health,
                "/records/NOPE": s.ErrorBody,
                "/records?limit=x": s.ErrorBody,
            }
            for path, model in answers.items():
                status, body = await call("GET", path)
                valid(model, body)
            status, detail = await call("GET", "/records/OA-2")
            assert detail["cdc_reason"] == "identity_not_found" and detail["batches"]
            status, described = await call("GET", "/openapi.json")
            assert status == 200 and described == openapi()
    finally:
        core.close()


async def test_a_403_to_post_events_matches_its_description(tmp_path: Path) -> None:
    """A page of another site posting to /events is refused with the error shape: the
    description listed the event's answer alone for 403, and a client built from it could
    not read that refusal."""
    core: Core = core_for(tmp_path)
    try:
        async with (
            serving(core) as client,
            client.post(
                "/events",
                data=json.dumps(recent("OA-X")),
                headers={"Content-Type": "application/json", "Origin": "http://other.example"},
            ) as response,
        ):
            status, body = response.status, await response.json()
        assert status == 403 and body["error"]["code"] == "cross_site"
        valid(answer_of("post", "/events", 403), body)
    finally:
        core.close()


def test_every_answer_model_is_used_by_a_route() -> None:
    used = {repr(answer) for route in ROUTES for answer in route.answers.values()}
    text = " ".join(used)
    for name in (
        "EventAnswer",
        "CheckAnswer",
        "RecordsPage",
        "RecordDetail",
        "BatchList",
        "BatchDetail",
        "Summary",
        "UnusableList",
        "Health",
    ):
        assert name in text, name


def test_an_open_route_lists_no_auth_error_and_a_body_route_its_timeout() -> None:
    """`/health` (open) listed 401 and 403; no route listed the 408 of `api.body_timeout`."""
    paths = openapi()["paths"]
    assert not {"401", "403"} & set(paths["/health"]["get"]["responses"])
    for path in ("/events", "/check", "/correction-requests"):
        assert "408" in paths[path]["post"]["responses"], path
    assert "408" not in paths["/records"]["get"]["responses"]


def test_the_headers_an_error_carries_are_described() -> None:
    """A client learnt `Retry-After`, `Allow` and `WWW-Authenticate` only by meeting them."""
    wanted = {"401": "WWW-Authenticate", "405": "Allow", "503": "Retry-After"}
    seen = 0
    for path, operations in openapi()["paths"].items():
        for method, operation in operations.items():
            for status, header in wanted.items():
                answer = operation["responses"].get(status)
                schema = (answer or {}).get("content", {}).get("application/json", {})
                if schema.get("schema", {}).get("$ref", "").endswith("/ErrorBody"):
                    assert header in answer.get("headers", {}), (method, path, status)
                    seen += 1
    assert seen > 20


def test_an_empty_page_of_records_matches_its_description() -> None:
    """An empty page is a RecordsPage and a PlatformRecordsPage both: described as `oneOf`
    them, it matched two and failed validation (schemathesis, any strict client)."""
    page = {"records": [], "next_cursor": None}
    for model in answer_of("get", "/records", 200).__args__:
        valid(model, page)
    for path, operations in openapi()["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                for content in answer["content"].values():
                    assert "oneOf" not in content["schema"], (method, path, status)


def test_a_connection_refused_at_health_matches_its_description() -> None:
    """Over the connection limits `/health` answers 503 in the error shape, which its
    description (`Health` alone) refused, and with a `Retry-After` it did not name."""
    head, body = REFUSAL.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 503 ") and b"Retry-After: " in head
    valid(answer_of("get", "/health", 503), json.loads(body))
    valid(answer_of("get", "/health", 503), {"status": "degraded", "reason": "x", "message": "y"})
    described = openapi()["paths"]["/health"]["get"]["responses"]["503"]
    assert "Retry-After" in described["headers"]


def test_an_array_of_events_is_described_with_one_at_least() -> None:
    """`[]` is a 400 (empty_array): the description took it for a valid body."""
    for path in ("/events", "/check"):
        body = openapi()["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        (array,) = [one for one in body["schema"]["oneOf"] if one.get("type") == "array"]
        assert array["minItems"] == 1, path
