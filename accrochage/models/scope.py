"""The certifiers an event's sender may send for: an exam platform's scoped ingest token.

A platform that delivers one school's certifications must not create, correct or revoke
another certifier's records, nor learn which certifier holds a record id it does not own.
"""

from __future__ import annotations

from accrochage.models.problems import Problem

Scope = frozenset[str] | None
"""The certifier keys a sender may send events for; None: any (the operator, a file, Kafka,
an ingest token given without `certifiers`)."""


def out_of_scope(
    scope: Scope, record_id: str | None, certifier: str | None, owner: str | None
) -> Problem | None:
    """Why a sender of `scope` may not send this event (for `certifier`, about a record
    `owner` holds, or None when no record has the id yet); None when it may."""
    if scope is None:
        return None
    allowed = ", ".join(repr(key) for key in sorted(scope))
    if certifier is None:
        return Problem(
            "certifier",
            f"this ingest token sends events for {allowed} only: name the event's certifier",
        )
    if certifier not in scope:
        return Problem(
            "certifier",
            f"this ingest token may not send events for certifier {certifier!r}; it sends "
            f"for {allowed} only",
        )
    if owner is not None and owner not in scope:
        # Never the owner's key: the sender may not learn which certifier holds the id.
        return Problem(
            "record_id",
            f"{record_id} is a record of a certifier this ingest token does not send for; "
            "record ids are unique across the tracker (the CDC idTechnique): choose another",
        )
    return None
