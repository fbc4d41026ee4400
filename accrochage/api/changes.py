"""`GET /changes`: every change of the records, in the order stored, after the last one read.

An exam platform learns there what became of its holders' certifications (accepted by the
CDC, rejected and why in class, taken back) without walking all its records again: it keeps
`next_after` and asks for the changes after it. A token scoped to certifiers reads their
records' changes only, each as `api/platform_view.py` shows a history entry (no free text).
"""

from __future__ import annotations

from collections.abc import Collection

from aiohttp import web

from accrochage.api import params
from accrochage.api.auth import scope_of
from accrochage.api.context import read
from accrochage.api.errors import ApiError
from accrochage.api.platform_view import platform_change

WINDOW = 20_000
"""The most changes one request looks through: a platform of few changes among a trusted
third party's many reads `next_after` on, in bounded steps, with `more` set."""
LAST = 999_999_999


def certifiers_read(asked: str | None, scope: frozenset[str] | None) -> Collection[str] | None:
    """Whose records' changes a request reads: `certifier=`, within a scoped token's own."""
    if scope is None:
        return None if asked is None else (asked,)
    if asked is None:
        return scope
    if asked not in scope:
        raise ApiError(
            403,
            "forbidden",
            f"this token reads the changes of its own certifiers only ({', '.join(sorted(scope))})",
        )
    return (asked,)


async def get_changes(request: web.Request) -> web.Response:
    after = params.integer(request, "after", 0, LAST) or 0
    limit = params.page_size(request)
    scope = scope_of(request)
    certifiers = certifiers_read(params.key(request, "certifier"), scope)
    rows, end, more = await read(request, lambda r: r.changes(after, limit, WINDOW, certifiers))
    shown = rows if scope is None else [platform_change(row) for row in rows]
    return web.json_response({"changes": shown, "next_after": end, "more": more})
