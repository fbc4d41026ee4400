"""Builders shared by the tests: the contract's example event, a registry, valid NIRs.

`delivered_event()` is the example of CONTRACT.md §1, copied verbatim; every call returns a
fresh deep copy, so a test may mutate it freely.
"""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

from accrochage.models.nir import nir_key
from accrochage.models.registry import Certifier, Emitter, Registry

# The day the tests run "as of": after the example's delivered_on (2026-11-18).
TODAY = date(2026, 12, 1)

EMITTER = Emitter("03VML243", "CERTIFICATEUR")
PIX = Certifier("pix", "03VML243", "MCFCER000209", frozenset({"RS5875", "RNCP35726"}))

_CONTRACT_EXAMPLE: dict[str, Any] = {
    "type": "certification.delivered",
    "event_id": "6f1c2d3e-0a4b-4c5d-8e9f-101112131415",
    "occurred_at": "2026-11-20T10:15:00+01:00",
    "source": "exam-platform-a",
    "record_id": "PX-2026-000123",
    "certifier": "pix",
    "certification": {"type": "RS", "code": "RS5875"},
    "delivered_on": "2026-11-18",
    "valid_until": None,
    "obtention": "PAR_SCORING",
    "certified": True,
    "score": "324",
    "mention": None,
    "language_level": None,
    "digital_level": {
        "general_score": 324,
        "results": [{"level": 4, "area": "2", "competence": "1"}],
    },
    "exam": {
        "start": "2026-11-10",
        "end": "2026-11-10",
        "mode": "A_DISTANCE",
        "center_postal_code": "75002",
    },
    "registration": {
        "access_mode": None,
        "vae_path": None,
        "initiative": "CERTIFIE",
        "date": "2026-10-01",
    },
    "proof_url": None,
    "option_label": None,
    "verbatim": None,
    "holder": {
        "birth_name": "Haba",
        "usage_name": None,
        "first_names": ["Bart"],
        "birth_date": "1993-05-23",
        "sex": "M",
        "birth_place": {
            "postal_code": "75002",
            "city": "PARIS",
            "country_code": None,
            "country": "FRANCE",
        },
        "nir": None,
    },
}


def delivered_event(**overrides: Any) -> dict[str, Any]:
    """A fresh deep copy of the contract's example event, top-level keys overridden."""
    event = copy.deepcopy(_CONTRACT_EXAMPLE)
    event.update(copy.deepcopy(overrides))
    return event


def revoked_event(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "certification.revoked",
        "event_id": "7a1c2d3e-0a4b-4c5d-8e9f-101112131415",
        "record_id": "PX-2026-000123",
        "certifier": "pix",
        "certification": {"type": "RS", "code": "RS5875"},
        "reason": "fraud detected",
    }
    event.update(copy.deepcopy(overrides))
    return event


def cpf_file_event(**overrides: Any) -> dict[str, Any]:
    """The example event identified by a CPF training file instead of a civil identity."""
    event = delivered_event(**overrides)
    event.pop("holder", None)
    event.setdefault(
        "cpf_file", {"id": "1234567891011", "holder_name": "Haba", "holder_first_name": "Bart"}
    )
    return event


def make_registry() -> Registry:
    return Registry(EMITTER, [PIX])


def make_nir(first13: str) -> str:
    """A 15-character NIR: the 13 given characters and their correct key."""
    return f"{first13}{nir_key(first13):02d}"


# A NIR that agrees with the example holder: a man (1) born in 1993 (93), May (05).
HOLDER_NIR = make_nir("1930575056123")
