"""What an exam platform reads of its certifiers' records: each record's fate, never the person.

A token scoped to certifiers (`api.ingest_tokens = [{token, certifiers}]`) may read
`GET /records` and `GET /records/{record_id}` for those certifiers: whether a record is pending,
in a batch, accepted or rejected by the CDC (and the class of the rejection), invalid and why,
how near its deadline is. The answer is built from a list of fields, not by removing some: the
record's content and stored correction (names, birth data, NIR), the CDC's verbatim messages
and the history's free texts are never in it. A record of another certifier is answered as
one that does not exist; a token open to every certifier reads nothing (the operator's).
"""

from __future__ import annotations

from typing import Any

from accrochage.api import schemas as s
from accrochage.api.errors import ApiError
from accrochage.models.lifecycle import TAKEN_OVER
from accrochage.models.scope import IdHolder

ROW_FIELDS = tuple(s.PlatformRow.model_fields)
"""A listed record: the fields of its answer's model, and no other (the field errors never
echo a value)."""
DETAIL_FIELDS = tuple(name for name in s.PlatformRecord.model_fields if name != "history")
HISTORY_FIELDS = tuple(s.PlatformHistoryRow.model_fields)
"""A history entry without its reason (a CDC rejection's reason quotes the CDC's message)."""
CHANGE_FIELDS = tuple(s.PlatformChange.model_fields)


def platform_row(row: dict[str, Any]) -> dict[str, Any]:
    return {name: row.get(name) for name in ROW_FIELDS}


def platform_detail(detail: dict[str, Any], taken_version: int | None = None) -> dict[str, Any]:
    """`taken_version`: the content version the record was taken over with (`taking`), or
    None: the versions before it were another certifier's, so the platform counts from it."""
    shown = {name: detail.get(name) for name in DETAIL_FIELDS}
    if taken_version is not None and isinstance(shown["version"], int):
        shown["version"] = max(1, shown["version"] - taken_version + 1)
    shown["history"] = [
        {name: entry.get(name) for name in HISTORY_FIELDS}
        for entry in own_history(detail.get("history", []))
    ]
    return shown


def platform_change(row: dict[str, Any]) -> dict[str, Any]:
    """A change (`GET /changes`) as a platform reads it: a history entry's fields with its
    record's id and certifier; the taking of a record from another certifier shown as its
    creation, as in `own_history` (the state leaves out the entries before it)."""
    shown = {name: row.get(name) for name in CHANGE_FIELDS}
    if str(row.get("reason") or "").startswith(TAKEN_OVER):
        shown["from_status"] = None
    return shown


def taking(history: list[dict[str, Any]]) -> str | None:
    """The event that took the record over from another certifier (its last such taking),
    or None: a platform's answer counts the record's content versions from it, since a
    version number past 1 on a record it created would tell that another certifier's
    invalid events came first."""
    found: str | None = None
    for entry in history:
        if str(entry.get("reason") or "").startswith(TAKEN_OVER):
            found = entry.get("event_id")
    return found


def own_history(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries since the record became its certifier's. A record id taken from another
    certifier's never-valid record (`models/lifecycle._taken_over`) begins, for its new
    certifier's platform, with the taking, shown as a creation: the other certifier's events
    before it are not this platform's to read."""
    start = 0
    for place, entry in enumerate(history):
        if str(entry.get("reason") or "").startswith(TAKEN_OVER):
            start = place
    own = history[start:]
    if start and own:
        own[0] = own[0] | {"from_status": None}
    return own


def certifier_read(asked: str | None, scope: frozenset[str]) -> str:
    """The certifier whose records a scoped token lists: the one it asks for, which must be
    one of its own, or its only one."""
    if asked is None:
        if len(scope) == 1:
            return next(iter(scope))
        raise ApiError(
            400,
            "bad_parameter",
            "this token sends for several certifiers: name one in certifier= "
            f"(one of {', '.join(sorted(scope))})",
        )
    if asked not in scope:
        raise ApiError(
            403,
            "forbidden",
            f"this token reads the records of its own certifiers only ({', '.join(sorted(scope))})",
        )
    return asked


def held_within(scope: frozenset[str], holders: dict[str, IdHolder]) -> bool:
    """Whether the one id looked up is held by one of the token's certifiers."""
    return any(holder.certifier in scope for holder in holders.values())


def shown_to(scope: frozenset[str], detail: dict[str, Any] | None) -> bool:
    """Whether a scoped token may see the record (one of another certifier is not found)."""
    return detail is not None and detail.get("certifier") in scope
