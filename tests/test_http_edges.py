"""Requests on the edge of HTTP: credentials that cannot be read are no credentials (never a
500, and `/health` stays open), and a method a route does not take is answered with the
methods it does (RFC 9110 asks for `Allow`)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from tests.test_tracker import make_core
from tests.test_ui import BASIC, TOKEN, service


@asynccontextmanager
async def guarded(tmp_path: Path) -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    """A service with the operator's token, its base URL and a client session."""
    core, _ = make_core(tmp_path, api={"token": TOKEN})
    try:
        async with (
            service(core) as base,
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
        ):
            yield base, http
    finally:
        core.close()


async def test_credentials_that_are_not_base64_text_are_none(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with guarded(tmp_path) as (base, http):
        for header in ("Basic é", "Basic ÿþ", "Basic =", "Bearer"):
            unreadable = {"Authorization": header}
            async with http.get(f"{base}/health", headers=unreadable) as response:
                assert response.status == 200, header
            for method, path in (("GET", "/records"), ("POST", "/events")):
                async with http.request(method, f"{base}{path}", headers=unreadable) as answer:
                    assert answer.status == 401, (header, method, path)
                    assert answer.headers["WWW-Authenticate"].startswith("Basic")
                    assert (await answer.json())["error"]["code"] == "unauthorized"
        async with http.get(f"{base}/records", headers=BASIC) as response:
            assert response.status == 200, "readable credentials still read"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "no traceback"


async def test_a_method_the_route_does_not_take_is_answered_with_those_it_does(
    tmp_path: Path,
) -> None:
    async with guarded(tmp_path) as (base, http):
        for method, path in (("DELETE", "/records"), ("PUT", "/events"), ("POST", "/ui")):
            async with http.request(method, f"{base}{path}", headers=BASIC) as response:
                assert response.status == 405, (method, path)
                allowed = {m.strip() for m in response.headers["Allow"].split(",")}
                assert method not in allowed and allowed, (method, path, allowed)
                error = (await response.json())["error"]
                assert error["code"] == "method_not_allowed"
                assert response.headers["Allow"] in error["message"], "it says what to use"
        # Whoever asks: without credentials, or with a platform's, the answer is still 405.
        for method, path in (("POST", "/health"), ("GET", "/events"), ("PUT", "/events")):
            async with http.request(method, f"{base}{path}") as response:
                assert response.status == 405, (method, path)
                assert response.headers["Allow"], (method, path)


async def test_a_query_parameter_the_route_does_not_define_is_refused(tmp_path: Path) -> None:
    """`GET /unusable?certifier=beta` answered every certifier's entries when it had no such
    filter, taken for beta's by the script that asked (`GET /summary?certifier=` still has
    none); each route takes the parameters docs/openapi.json gives it."""
    async with guarded(tmp_path) as (base, http):
        for path, query in (
            ("/unusable", "status=pending"),
            ("/summary", "certifier=pix"),
            ("/records", "foo=1"),
            ("/records/R-1", "certifier=pix"),
            ("/correction-requests", "record_id=R-1"),
        ):
            async with http.get(f"{base}{path}?{query}", headers=BASIC) as response:
                assert response.status == 400, (path, query)
                error = (await response.json())["error"]
                assert error["code"] == "bad_parameter"
                assert f"takes no parameter '{query.split('=')[0]}'" in error["message"]
        async with http.get(f"{base}/unusable?status=pending") as response:
            assert response.status == 401, "who asks is checked first"
        async with http.get(f"{base}/records?certifier=pix&limit=5", headers=BASIC) as response:
            assert response.status == 200
        async with http.get(f"{base}/unusable?all=true", headers=BASIC) as response:
            assert response.status == 200
        async with http.get(f"{base}/unusable?certifier=pix", headers=BASIC) as response:
            assert (response.status, (await response.json())["events"]) == (200, [])


async def test_a_path_no_route_matches_is_404_to_a_platform_too(tmp_path: Path) -> None:
    """A platform's token on a mistyped path (`/events/`, `/event`) learns that the path is
    wrong, not that it needs the operator's token (which it would then ask for)."""
    platform = "p" * 40
    api = {"token": TOKEN, "ingest_tokens": [{"token": platform, "certifiers": ["pix"]}]}
    core, _ = make_core(tmp_path, api=api)
    try:
        async with (
            service(core) as base,
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
        ):
            for token in (platform, None):
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                for method, path in (("POST", "/events/"), ("POST", "/event"), ("GET", "/record")):
                    async with http.request(
                        method, f"{base}{path}", headers=headers, json={}
                    ) as response:
                        assert response.status == 404, (token, method, path)
                        error = (await response.json())["error"]
                        assert error["code"] == "not_found", (method, path)
                        assert "no route at this path" in error["message"]
                        assert "operator" not in error["message"]
            async with http.get(
                f"{base}/summary", headers={"Authorization": f"Bearer {platform}"}
            ) as r:
                assert r.status == 403, "a route the platform may not read stays refused"
            async with http.get(f"{base}/summary") as r:
                assert r.status == 401, "and a caller without a token is asked for one"
    finally:
        core.close()
