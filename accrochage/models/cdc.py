"""What a CDC rejection message means: its class (`CdcReason`), from the message's words.

Messages are matched without accents and case, so that a report decoded as Latin-1 (mojibake)
or retyped by hand is classed the same.
"""

from __future__ import annotations

import re
import unicodedata

from accrochage.models.vocabulary import CdcReason

_RULES = (
    (re.compile(r"\bplusieurs\s+titulaires\b"), CdcReason.IDENTITY_AMBIGUOUS),
    (re.compile(r"\baucun\s+titulaire\b"), CdcReason.IDENTITY_NOT_FOUND),
    (
        re.compile(r"\bpassage\b.*\bexiste\s+d\S{1,3}j\S{1,3}\s+en\s+base\b"),
        CdcReason.ALREADY_EXISTS,
    ),
)

ADVICE = {
    CdcReason.IDENTITY_NOT_FOUND: "no holder matches: correct the identity (birth name, first "
    "names, birth date and place, NIR) and send the corrected event; a retry alone fails again",
    CdcReason.IDENTITY_AMBIGUOUS: "several holders match: send more identity data (NIR, birth "
    "place) in a corrected event",
    CdcReason.ALREADY_EXISTS: "the CDC already holds this passage",
    CdcReason.FILE_REJECTED: "the whole file was refused: fix what the report says, then retry "
    "the batch (accrochage retry --batch REF)",
    CdcReason.OTHER: "read the message; retry once the cause is fixed on either side",
}


def _plain(message: str) -> str:
    decomposed = unicodedata.normalize("NFKD", message)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def classify(message: str | None, *, whole_file: bool = False) -> CdcReason:
    """The class of a rejection: `file_rejected` for a whole file, else from the message."""
    if whole_file:
        return CdcReason.FILE_REJECTED
    plain = _plain(message or "")
    for pattern, reason in _RULES:
        if pattern.search(plain):
            return reason
    return CdcReason.OTHER
