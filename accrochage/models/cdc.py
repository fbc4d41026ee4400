"""What a CDC rejection message means: its class (`CdcReason`), from the message's words.

Messages are matched without accents and case, so that a report decoded as Latin-1 (mojibake)
or retyped by hand is classed the same.
"""

from __future__ import annotations

import re
import unicodedata

from accrochage.models.vocabulary import CdcReason

_ALREADY_EXISTS = re.compile(r"\bpassage\b.*\bexiste\s+d\S{1,3}j\S{1,3}\s+en\s+base\b", re.DOTALL)
"""On the accent-stripped, case-folded message. `d\\S{1,3}j\\S{1,3}` also accepts "deja" and
the mojibake "dÃ©jÃ" of a report decoded as Latin-1. The word "passage" is required: "Le
titulaire existe déjà en base" says nothing about the passage being held."""
_NAMED_ID = re.compile(r"\bid\s+technique\s+partenaire\s+(\S+)", re.IGNORECASE)
"""The idTechnique the CDC's "existe déjà en base" names (SPEC §8: `… et l'id technique
partenaire <id> existe déjà en base`), read on the message as written: the id is given to
the CDC's support as it holds it, never case-folded."""
_RULES = (
    (re.compile(r"\bplusieurs\s+titulaires\b"), CdcReason.IDENTITY_AMBIGUOUS),
    (re.compile(r"\baucun\s+titulaire\b"), CdcReason.IDENTITY_NOT_FOUND),
    (_ALREADY_EXISTS, CdcReason.ALREADY_EXISTS),
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


def already_exists(message: str) -> bool:
    """Whether a KO message says the CDC already holds the passage ("existe déjà en base"):
    an acceptance for a CREATION (SPEC §8; Pix counts it as a success)."""
    return _ALREADY_EXISTS.search(_plain(message)) is not None


def held_under(message: str, id_technique: str) -> str | None:
    """The other idTechnique an "existe déjà en base" names, if it names one: the CDC holds
    this certification under that id, not this passage's (the real report of SPEC §9 says so
    of 1983189, naming 1559735). A correction or withdrawal sent under this record's id
    finds nothing there: the operator must know."""
    if _ALREADY_EXISTS.search(_plain(message)) is None:
        return None
    named = _NAMED_ID.search(message)
    if named is None or _plain(named.group(1)) == _plain(id_technique):
        return None
    return named.group(1)
