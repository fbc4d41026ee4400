"""The certifiers an event's sender may send for: an exam platform's scoped ingest token.

A platform that delivers one school's certifications must not create, correct or revoke
another certifier's records, nor learn which certifier holds a record id or delivers a code:
its refusals name no certifier but those it sends for.
"""

from __future__ import annotations

from typing import NamedTuple

from accrochage.models.decode import Decoded, Kind
from accrochage.models.problems import Problem


class IdHolder(NamedTuple):
    """Who holds a stored record id: its certifier, and whether it `yields` the id to another
    certifier's valid event (`Record.yields_id`)."""

    certifier: str | None
    yields: bool


def takes_id(yields: bool, decoded: Decoded) -> bool:
    """Whether `decoded` takes the id of a record of another certifier: one that `yields` it
    (never valid: `Record.yields_id`) goes to the first valid delivered event."""
    return yields and decoded.valid and decoded.kind is Kind.DELIVERED


Scope = frozenset[str] | None
"""The certifier keys a sender may send events for; None: any (the operator, a file, Kafka,
an ingest token given without `certifiers`)."""


def out_of_scope(
    scope: Scope, decoded: Decoded, *, stored: bool, owner: str | None, yields: bool = False
) -> Problem | None:
    """Why a sender of `scope` may not send this event (for its certifier, named or found by
    its code), about a record `stored` already with certifier `owner`; None when it may.

    A record without a certifier (an invalid event that named none, from another sender) is
    no scoped sender's: only a scoped sender's own certifiers' records are. Another
    certifier's record that `yields` its id (never valid: `Record.yields_id`) goes to a valid
    event of the sender's own certifier, as it would to any sender's."""
    if scope is None:
        return None
    record_id, certifier = decoded.record_id, decoded.certifier
    allowed = ", ".join(repr(key) for key in sorted(scope))
    named = decoded.payload is not None and isinstance(decoded.payload.get("certifier"), str)
    if certifier is None or (certifier not in scope and not named):
        # One answer whether the code is unknown or another certifier's: which it is would
        # tell the platform that another certifier here delivers that code.
        return Problem(
            "certifier",
            f"this sender sends events for {allowed} only: name the event's certifier",
        )
    if certifier not in scope:
        return Problem(
            "certifier",
            f"this sender sends events for {allowed} only, and the event's certifier is another",
        )
    if stored and owner not in scope and not (owner is not None and takes_id(yields, decoded)):
        return Problem(
            "record_id",
            f"{record_id} is a record of a certifier this sender does not send for; "
            "record ids are unique across the tracker (the CDC idTechnique): choose another",
        )
    return None
