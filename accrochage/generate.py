"""Realistic synthetic `certification.delivered` events, for demos, tests and benchmarks.

Deterministic for a seed. Names, places and dates look like what exam platforms send,
including accents, apostrophes, foreign births, partial birth dates and CPF-file holders.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from accrochage.models.nir import nir_key

BIRTH_NAMES = (
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Simon",
    "Laurent",
    "Lefèvre",
    "Michel",
    "Garcia",
    "D'Amico",
    "N'Diaye",
    "Nguyễn",
    "Müller",
    "O'Connor",
    "Le Gall",
    "Haba",
    "Dupont-Aignan",
)
FIRST_NAMES_M = ("Jean", "Louis", "Lucas", "Hugo", "Noé", "Jérôme", "Bart", "Mamadou", "Éric")
FIRST_NAMES_F = ("Marie", "Léa", "Chloé", "Inès", "Zoé", "Anaïs", "Fatou", "Hélène", "Maëlle")
FRENCH_PLACES = (
    ("75056", "75002", "PARIS"),
    ("69123", "69001", "LYON"),
    ("13055", "13001", "MARSEILLE"),
    ("2A004", "20000", "AJACCIO"),
    ("59350", "59000", "LILLE"),
    ("97411", "97400", "SAINT-DENIS"),
)
FOREIGN_PLACES = (
    ("99109", "ALLEMAGNE", "Berlin"),
    ("99350", "MAROC", "Casablanca"),
    ("99134", "ESPAGNE", "Madrid"),
    ("99127", "ITALIE", "Roma"),
)
ACCESS_MODES = (
    "FORMATION_INITIALE_HORS_APPRENTISSAGE",
    "FORMATION_CONTINUE_HORS_CONTRAT_DE_PROFESSIONNALISATION",
    "VAE",
    "CANDIDAT_LIBRE",
    None,
)


@dataclass(frozen=True)
class GeneratedCertifier:
    key: str
    codes: Sequence[str]


def make_nir(sex: str, birth: date, insee: str, rng: random.Random) -> str:
    department = insee[:2]
    commune = insee[2:]
    first13 = f"{1 if sex == 'M' else 2}{birth.year % 100:02d}{birth.month:02d}{department}"
    first13 += f"{commune}{rng.randrange(1, 999):03d}"
    return f"{first13}{nir_key(first13):02d}"


def _holder(rng: random.Random, delivered: date) -> dict[str, Any]:
    sex = rng.choice("MF")
    names = FIRST_NAMES_M if sex == "M" else FIRST_NAMES_F
    birth = delivered - timedelta(days=rng.randrange(17 * 365, 65 * 365))
    holder: dict[str, Any] = {
        "birth_name": rng.choice(BIRTH_NAMES),
        "usage_name": rng.choice(BIRTH_NAMES) if rng.random() < 0.15 else None,
        "first_names": rng.sample(names, rng.randint(1, 3)),
        "birth_date": birth.isoformat(),
        "sex": sex,
    }
    roll = rng.random()
    if roll < 0.1:
        insee, country, city = rng.choice(FOREIGN_PLACES)
        holder["birth_place"] = {"insee_code": insee, "city": city, "country": country}
    elif roll < 0.55:
        insee, _postal, city = rng.choice(FRENCH_PLACES)
        holder["birth_place"] = {"insee_code": insee, "city": city, "country": "FRANCE"}
        if rng.random() < 0.3:
            holder["nir"] = make_nir(sex, birth, insee, rng)
    elif roll < 0.97:
        _insee, postal, city = rng.choice(FRENCH_PLACES)
        holder["birth_place"] = {"postal_code": postal, "city": city, "country": "FRANCE"}
    if rng.random() < 0.03:
        holder["birth_date"] = {"year": birth.year, "month": None, "day": None}
    return holder


def _event(
    rng: random.Random, index: int, certifier: GeneratedCertifier, today: date, max_age_days: int
) -> dict[str, Any]:
    delivered = today - timedelta(days=rng.randrange(0, max_age_days + 1))
    code = rng.choice(certifier.codes)
    scored = code.startswith("RS")
    exam_day = delivered - timedelta(days=rng.randrange(0, 20))
    event: dict[str, Any] = {
        "type": "certification.delivered",
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "occurred_at": f"{delivered.isoformat()}T10:15:00+01:00",
        "source": "exam-platform-demo",
        "record_id": f"{certifier.key.upper()}-{index:08d}",
        "certifier": certifier.key,
        "certification": {"type": "RS" if scored else "RNCP", "code": code},
        "delivered_on": delivered.isoformat(),
        "obtention": "PAR_SCORING" if scored else "PAR_ADMISSION",
        "score": str(rng.randrange(100, 1000)) if scored else None,
        "mention": None if scored else rng.choice(("SANS_MENTION", "MENTION_BIEN", None)),
        "exam": {
            "start": exam_day.isoformat(),
            "end": exam_day.isoformat(),
            "mode": rng.choice(("A_DISTANCE", "EN_PRESENTIEL", "MIXTE")),
            "center_postal_code": rng.choice(FRENCH_PLACES)[1],
        },
        "registration": {"access_mode": rng.choice(ACCESS_MODES), "initiative": "CERTIFIE"},
    }
    if scored and rng.random() < 0.5:
        event["digital_level"] = {
            "general_score": rng.randrange(1, 1000),
            "results": [
                {"level": rng.randint(1, 8), "area": str(area), "competence": str(comp)}
                for area, comp in ((1, 1), (2, 1), (3, 2))
            ],
        }
    if rng.random() < 0.05:
        event["language_level"] = rng.choice(("A2", "B1", "B2", "C1"))
    if rng.random() < 0.03:
        event["cpf_file"] = {
            "id": f"{rng.randrange(10**12, 10**13)}",
            "holder_name": rng.choice(BIRTH_NAMES),
            "holder_first_name": rng.choice(FIRST_NAMES_F),
        }
    else:
        event["holder"] = _holder(rng, delivered)
    return event


def _break(event: dict[str, Any], rng: random.Random) -> None:
    """One realistic mistake: the kind exam platforms actually make."""
    match rng.randrange(5):
        case 0:
            event["delivered_on"] = "2026-02-30"
        case 1:
            event.pop("holder", None)
            event.pop("cpf_file", None)
        case 2:
            event["certification"] = {"type": "RNCP", "code": "RS99999"}
        case 3:
            event["obtention"] = "PAR_HASARD"
        case _:
            event["score"] = "x" * 300


def generate_events(
    count: int,
    certifiers: Sequence[GeneratedCertifier],
    *,
    today: date,
    seed: int = 0,
    invalid_ratio: float = 0.0,
    max_age_days: int = 80,
    start_index: int = 0,
) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    for index in range(start_index, start_index + count):
        event = _event(rng, index, rng.choice(certifiers), today, max_age_days)
        if rng.random() < invalid_ratio:
            _break(event, rng)
        yield event
