"""The NIR (numéro de sécurité sociale): format, key, and what it says of its holder.

Messages name the digits they are about, never their values: a NIR and the birth data it
holds are personal data, and these messages go back to the exam platform."""

from __future__ import annotations

import re

from accrochage.models.event import BirthDate
from accrochage.models.problems import Problem

NIR_PATTERN = re.compile(r"[0-9]{5}(?:[0-9]{2}|2[AB])[0-9]{8}")
FIELD = "holder.nir"


def nir_key(first13: str) -> int:
    """97 − (n mod 97), Corsica's 2A and 2B counted as 19 and 18."""
    digits = first13.replace("2A", "19").replace("2B", "18")
    return 97 - int(digits) % 97


def nir_errors(nir: str) -> list[Problem]:
    if NIR_PATTERN.fullmatch(nir) is None:
        return [
            Problem(
                FIELD,
                "expected 15 characters: 13 digits (2A or 2B allowed for a Corsican "
                "department) and the 2-digit key",
            )
        ]
    expected = nir_key(nir[:13])
    if int(nir[13:]) != expected:
        return [
            Problem(
                FIELD,
                "its key (the last 2 digits) does not match the first 13 digits "
                "(97 − (n mod 97)): check the number",
            )
        ]
    return []


def nir_warnings(nir: str, sex: str, birth: BirthDate) -> list[Problem]:
    """Disagreements with the declared identity; the CDC, not us, decides who is right."""
    warnings: list[Problem] = []
    sex_digit = nir[0]
    if sex_digit not in "12":
        warnings.append(
            Problem(
                FIELD,
                "is a temporary number (its first digit is not 1 or 2): it is not exported "
                "as identifiantNational",
            )
        )
    elif (sex_digit == "1") != (sex == "M"):
        warnings.append(Problem(FIELD, "its first digit (the sex) disagrees with holder.sex"))
    if int(nir[1:3]) != birth.year % 100:
        warnings.append(
            Problem(FIELD, "its birth year (digits 2–3) disagrees with holder.birth_date")
        )
    month = int(nir[3:5])
    if 1 <= month <= 12 and birth.month is not None and month != birth.month:
        warnings.append(
            Problem(FIELD, "its birth month (digits 4–5) disagrees with holder.birth_date")
        )
    return warnings
