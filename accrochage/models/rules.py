"""Rules that join several fields of a structurally valid event: errors and warnings.

`unknown`: fields (dotted paths) that failed on their own, left out or stood in for in a
partial event (`models/partial.py`): a rule that reads one of them, or a field within one,
does not run, or it would judge the stand-in.
"""

from __future__ import annotations

import unicodedata
from datetime import date, timedelta

from accrochage.models.event import BirthDate, DeliveredEvent
from accrochage.models.nir import nir_errors, nir_warnings
from accrochage.models.problems import Problem, known


def _born_after(birth: BirthDate, day: date) -> bool:
    if birth.year != day.year:
        return birth.year > day.year
    if birth.month is None or birth.month != day.month:
        return birth.month is not None and birth.month > day.month
    return birth.day is not None and birth.day > day.day


def _identity_errors(event: DeliveredEvent) -> list[Problem]:
    if event.holder is None and event.cpf_file is None:
        return [Problem("holder", "holder (or cpf_file, its CPF alternative) is required")]
    if event.holder is not None and event.cpf_file is not None:
        return [Problem("cpf_file", "give either holder or cpf_file, not both")]
    return []


def _holder_errors(event: DeliveredEvent, unknown: frozenset[str]) -> list[Problem]:
    holder = event.holder
    if holder is None:
        return []
    errors: list[Problem] = []
    if known(unknown, "holder.birth_date", "delivered_on") and _born_after(
        holder.birth_date, event.delivered_on
    ):
        errors.append(Problem("holder.birth_date", "is after delivered_on"))
    place = holder.birth_place
    if (
        place is not None
        and place.insee_code is not None
        and place.postal_code is not None
        and known(unknown, "holder.birth_place.insee_code", "holder.birth_place.postal_code")
    ):
        errors.append(
            Problem(
                "holder.birth_place.postal_code",
                "give either insee_code or postal_code, not both (the CDC takes one)",
            )
        )
    if holder.nir is not None and known(unknown, "holder.nir"):
        errors.extend(nir_errors(holder.nir))
    return errors


AHEAD_OF_PARIS = timedelta(days=1)
"""How far a delivery date may run ahead of Paris's today: overseas France is up to 11 hours
ahead (New Caledonia, Wallis and Futuna), so a certification delivered there just after its
midnight carries tomorrow's Paris date. It was refused as "in the future" and stayed invalid
until someone ran `revalidate`."""


def certification_errors(kind: str, code: str) -> list[Problem]:
    """A code whose prefix is not its type (`RS` with `RNCP1`): one of the two is mistyped."""
    if code.startswith("RNCP") == (kind == "RNCP"):
        return []
    return [
        Problem(
            "certification.code",
            f"{code} does not match certification.type {kind}: the code starts with the type",
        )
    ]


def delivered_errors(
    event: DeliveredEvent, today: date, unknown: frozenset[str] = frozenset()
) -> list[Problem]:
    """What the CDC schema forbids across fields, or what cannot be true."""
    errors = _identity_errors(event)
    if known(unknown, "certification.code", "certification.type"):
        errors += certification_errors(event.certification.type, event.certification.code)
    delivered = event.delivered_on if known(unknown, "delivered_on") else None
    if delivered is not None and delivered > today + AHEAD_OF_PARIS:
        errors.append(
            Problem(
                "delivered_on",
                f"{delivered} is in the future (today is {today} in Paris, "
                f"{today + AHEAD_OF_PARIS} at most in overseas France)",
            )
        )
    if (
        delivered is not None
        and event.valid_until is not None
        and known(unknown, "valid_until")
        and event.valid_until < delivered
    ):
        errors.append(Problem("valid_until", "is before delivered_on"))
    exam = event.exam
    if (
        exam is not None
        and exam.start
        and exam.end
        and known(unknown, "exam.start", "exam.end")
        and exam.start > exam.end
    ):
        errors.append(Problem("exam.end", f"{exam.end} is before exam.start {exam.start}"))
    errors.extend(_holder_errors(event, unknown))
    return errors


def record_id_warnings(record_id: str) -> list[Problem]:
    """Why `record_id` may look like another id that is not the same: the CDC and the tracker
    compare ids character by character, so an id sent once composed and once decomposed
    (`é` as one character or as `e` and an accent), or with an invisible character, makes two
    records, and two passages at the CDC for one certification. Not an error: an id already
    sent that way must stay as it is."""
    if record_id.isascii():
        return []
    warnings = []
    if not unicodedata.is_normalized("NFC", record_id):
        warnings.append(
            Problem(
                "record_id",
                "is not in Unicode NFC form: the same letters composed otherwise would be "
                "another record; send this record's id the same way every time",
            )
        )
    odd = sorted({f"U+{ord(c):04X}" for c in record_id if _looks_like_nothing(c)})
    if odd:
        warnings.append(
            Problem(
                "record_id",
                f"holds characters that look like nothing or like a space ({', '.join(odd)}): "
                "the id without them would be another record",
            )
        )
    return warnings


def _looks_like_nothing(char: str) -> bool:
    """An invisible character (zero-width space, soft hyphen, direction marks: Unicode `Cf`)
    or a space other than U+0020 (a no-break space: `Zs`)."""
    category = unicodedata.category(char)
    return category == "Cf" or (category == "Zs" and char != " ")


def delivered_warnings(
    event: DeliveredEvent, unknown: frozenset[str] = frozenset()
) -> list[Problem]:
    """Plausibility rules the CDC's own examples do not follow: reported, never blocking."""
    warnings: list[Problem] = []
    if known(unknown, "record_id"):
        warnings.extend(record_id_warnings(event.record_id))
    exam = event.exam
    if exam is not None and known(unknown, "delivered_on"):
        for name, day in (("exam.start", exam.start), ("exam.end", exam.end)):
            if day is not None and known(unknown, name) and day > event.delivered_on:
                warnings.append(Problem(name, f"{day} is after delivered_on {event.delivered_on}"))
    registration = event.registration
    if (
        registration is not None
        and registration.vae_path is not None
        and registration.access_mode != "VAE"
        and known(unknown, "registration.vae_path", "registration.access_mode")
    ):
        warnings.append(
            Problem("registration.vae_path", "is given but registration.access_mode is not VAE")
        )
    holder = event.holder
    if (
        holder is not None
        and holder.nir is not None
        and known(unknown, "holder.nir", "holder.sex", "holder.birth_date")
        and not nir_errors(holder.nir)
    ):
        warnings.extend(nir_warnings(holder.nir, holder.sex, holder.birth_date))
    return warnings
