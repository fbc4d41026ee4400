"""`GET /changes`: every change of the records, in the order stored, after the last one read.

An exam platform learns there what became of its holders' certifications (accepted by the
CDC, rejected and why in class, taken back) without walking all its records again: it keeps
`next_after` and asks for the changes after it. A token scoped to certifiers reads their
records' changes only, each as `api/platform_view.py` shows a history entry (no free text).
"""

from __future__ import annotations

import re
from collections.abc import Collection

from aiohttp import web

from accrochage.api import params
from accrochage.api.auth import scope_of
from accrochage.api.context import read
from accrochage.api.errors import ApiError
from accrochage.api.platform_view import platform_change

_MARK = re.compile(r"([0-9a-f]{8})\.([0-9]{1,18})")
WINDOW = 20_000
"""The most changes one request looks through: a platform of few changes among a trusted
third party's many reads `next_after` on, in bounded steps, with `more` set."""


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
    mark = _mark(params.key(request, "after"))
    limit = params.page_size(request)
    scope = scope_of(request)
    certifiers = certifiers_read(params.key(request, "certifier"), scope)
    after = 0 if mark is None else mark[1]
    page = await read(request, lambda r: r.changes(after, limit, WINDOW, certifiers))
    if mark is not None and mark[0] != page.epoch:
        raise ApiError(
            409,
            "changes_restarted",
            "the state was restored from a backup since this mark was given: changes stored "
            "after the backup are gone, and new ones are numbered again. Read the records "
            "again (GET /records?order=record_id), then the changes after details.after",
            {"after": _cursor(page.epoch, page.last)},
        )
    shown = page.changes if scope is None else [platform_change(r) for r in page.changes]
    return web.json_response(
        {"changes": shown, "next_after": _cursor(page.epoch, page.end), "more": page.more}
    )


def _cursor(epoch: str, seq: int) -> str:
    return f"{epoch}.{seq}"


def _mark(given: str | None) -> tuple[str, int] | None:
    """`after` as the epoch and change it names; None: from the first change."""
    if given is None or given == "":
        return None
    found = _MARK.fullmatch(given)
    if found is None:
        raise ApiError(
            400,
            "bad_parameter",
            "after: send a next_after of an earlier answer, unchanged (or leave it out to "
            "read from the first change)",
        )
    return found.group(1), int(found.group(2))
