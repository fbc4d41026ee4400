"""Reference data rules (CONTRACT §11): the RNCP/RS export and the COG, behind a lookup.

Pure: `Reference` is a protocol the refdata layer implements (in memory, from the state);
the rules below only ask it questions. Each rule runs only when the data it needs is loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from accrochage.models.event import BirthDate, DeliveredEvent
from accrochage.models.problems import Problem, known

COG_FIRST_DAY = date(1943, 1, 1)
"""The COG's history starts here: before it, it cannot say whether a commune existed."""


@dataclass(frozen=True, slots=True)
class Fiche:
    """What the rules need of one RNCP/RS fiche."""

    code: str
    active: bool
    end_of_registration: date | None = None
    """`Date_Fin_Enregistrement`."""
    delivery_limit: date | None = None
    """`DATE_LIMITE_DELIVRANCE` (the XML export only; absent on most fiches)."""
    sirets: frozenset[str] = frozenset()
    """The SIRETs of its certifiers (some certifiers have none in the export)."""
    replaced_by: tuple[str, ...] = ()
    """Newer fiches that replace it (`Ancienne_Nouvelle_Certification`)."""
    unidentified_certifiers: bool = False
    """One of its certifiers has no SIRET in the export (about a third of them): a SIRET
    not among `sirets` may be that certifier's, so it proves nothing."""
    inactive: tuple[tuple[str, date | None], ...] = ()
    """SIRETs among `sirets` whose certifier the export says is no longer active
    (`ETAT_CERTIFICATEUR`, the XML export only), each with the day its state last changed
    (`DATE_DERNIERE_MODIFICATION_ETAT`), when given."""

    def inactive_since(self, siret: str) -> tuple[bool, date | None]:
        """Whether the certifier of `siret` is inactive, and since when (if known)."""
        for listed, since in self.inactive:
            if listed == siret:
                return True, since
        return False, None


@dataclass(frozen=True, slots=True)
class Period:
    """A span during which a COG code existed: `start <= day < end` (no end: still current)."""

    start: date
    end: date | None

    def holds(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day < self.end)


@dataclass(frozen=True, slots=True)
class Move:
    """A commune change (`v_mvt_commune`): the code before and after, and when."""

    day: date
    before: str
    after: str


class Reference(Protocol):
    """The lookups the rules need; `has_*` says whether that part is loaded."""

    def covers(self, code: str) -> bool:
        """Whether the loaded export lists the fiches of this code's kind (RNCP, RS)."""
        ...

    @property
    def has_communes(self) -> bool: ...

    @property
    def has_countries(self) -> bool: ...

    def fiche(self, code: str) -> Fiche | None: ...

    def commune(self, code: str) -> Sequence[Period]:
        """The periods of a commune code (COM, ARM, COMD, COMA); empty when unknown."""
        ...

    def moves(self, code: str) -> Sequence[Move]:
        """Changes in which this code is the code before or after; may be empty."""
        ...

    def country(self, code: str) -> bool: ...


def kind_of(code: str) -> str:
    """The kind of fiche a certification code names: `RNCP` or `RS`."""
    return "RNCP" if code.startswith("RNCP") else "RS"


def reference_problems(
    event: DeliveredEvent,
    siret: str | None,
    reference: Reference,
    unknown: frozenset[str] = frozenset(),
) -> tuple[list[Problem], list[Problem]]:
    """The errors and warnings of CONTRACT §11 for one structurally valid event; `unknown`:
    fields standing in for ones that failed (`models/rules.py`), whose rules do not run.

    It runs for every event: the common case (a known, deliverable code; a commune that
    existed) takes a few lookups and comparisons, and builds a message only for a finding.
    """
    errors: list[Problem] = []
    warnings: list[Problem] = []
    code = event.certification.code
    if known(unknown, "certification.code", "certification.type") and reference.covers(code):
        fiche = reference.fiche(code)
        if fiche is None:
            errors.append(
                Problem(
                    "certification.code",
                    f"{code} is not in France compétences' RNCP/RS export: check the code "
                    "(or load a newer export if the fiche was just published)",
                )
            )
        elif unknown or not _fiche_is_fine(fiche, event.delivered_on, siret):
            _fiche_rules(event, fiche, siret, errors, warnings, unknown)
    holder = event.holder
    if holder is None:
        return errors, warnings
    place = holder.birth_place
    if place is None or place.insee_code is None:
        return errors, warnings
    if not known(unknown, "holder.birth_place.insee_code"):
        return errors, warnings
    insee = place.insee_code
    if insee.startswith("99"):
        if reference.has_countries and not reference.country(insee):
            warnings.append(
                Problem(
                    "holder.birth_place.insee_code",
                    "is not a country or territory code of the COG; check the code (99xxx, "
                    "INSEE's list of countries)",
                )
            )
    elif reference.has_communes and known(unknown, "holder.birth_date"):
        problem = _commune_problem(insee, holder.birth_date, reference)
        if problem is not None:
            warnings.append(Problem("holder.birth_place.insee_code", problem))
    return errors, warnings


def _fiche_is_fine(fiche: Fiche, delivered: date, siret: str | None) -> bool:
    end = fiche.end_of_registration
    limit = fiche.delivery_limit
    return (
        (end is None or delivered <= end)
        and (limit is None or delivered <= limit)
        and not fiche.replaced_by
        and not _siret_unlisted(fiche, siret)
        and _siret_inactive(fiche, siret, delivered) is None
    )


def _siret_inactive(fiche: Fiche, siret: str | None, delivered: date | None) -> str | None:
    """Why the configured SIRET's certifier may no longer deliver the fiche: the export says
    it is inactive, and its state changed before the delivery (or on a day not given)."""
    if siret is None or not fiche.inactive:
        return None
    inactive, since = fiche.inactive_since(siret)
    if not inactive:
        return None
    if since is None:
        return "inactive"
    if delivered is not None and delivered > since:
        return f"inactive since {since}"
    return None


def _siret_unlisted(fiche: Fiche, siret: str | None) -> bool:
    """The configured SIRET is provably not among the fiche's certifiers: every certifier
    of the fiche has a SIRET in the export, and none is this one."""
    return (
        siret is not None
        and bool(fiche.sirets)
        and not fiche.unidentified_certifiers
        and siret not in fiche.sirets
    )


def _fiche_rules(
    event: DeliveredEvent,
    fiche: Fiche,
    siret: str | None,
    errors: list[Problem],
    warnings: list[Problem],
    unknown: frozenset[str],
) -> None:
    code = fiche.code
    delivered = event.delivered_on if known(unknown, "delivered_on") else None
    if (
        delivered is not None
        and fiche.delivery_limit is not None
        and delivered > fiche.delivery_limit
    ):
        errors.append(
            Problem(
                "delivered_on",
                f"{delivered} is after {code}'s last day of delivery "
                f"(DATE_LIMITE_DELIVRANCE {fiche.delivery_limit}): it can no longer be delivered",
            )
        )
    end = fiche.end_of_registration
    if (
        delivered is not None
        and end is not None
        and delivered > end
        and known(unknown, "registration.date")
    ):
        registered = event.registration.date if event.registration is not None else None
        if registered is None or registered > end:
            warnings.append(
                Problem(
                    "delivered_on",
                    f"{delivered} is after the end of {code}'s registration ({end}); only "
                    "holders registered before it may still receive it: give registration.date",
                )
            )
    if fiche.replaced_by:
        newer = ", ".join(fiche.replaced_by)
        warnings.append(
            Problem("certification.code", f"{code} is replaced by {newer} in the RNCP/RS export")
        )
    if _siret_unlisted(fiche, siret):
        warnings.append(
            Problem(
                "certifier",
                f"the configured SIRET {siret} is not among {code}'s certifiers in the RNCP/RS "
                "export: check certifiers[].siret or the certifier's registration",
            )
        )
    state = _siret_inactive(fiche, siret, delivered)
    if state is not None:
        warnings.append(
            Problem(
                "certifier",
                f"the configured SIRET {siret} is {state} among {code}'s certifiers in the "
                "RNCP/RS export (ETAT_CERTIFICATEUR): check that the certifier may still "
                "deliver it",
            )
        )


OVERSEAS_COLLECTIVITIES = ("975", "977", "978", "98")
"""Saint-Pierre-et-Miquelon, Saint-Barthélemy, Saint-Martin, and the Pacific and southern
territories (New Caledonia 988xx, French Polynesia 987xx, Wallis-et-Futuna 986xx...): their
codes are real birth places, but INSEE lists them in the overseas collectivities' files,
never in `v_commune_depuis_1943` (which ends with Mayotte): a holder born in Nouméa was told
their code "is not a commune code of the COG", which nobody could fix."""

MAYOTTE_IN_THE_COG = date(2011, 3, 31)
"""Mayotte's communes (976xx) enter the COG when it became a department (creation events with
no "before" side, FORMATS §2.4): the COG does not say what its codes were before, so it does
not decide for a birth there before that day."""


def _commune_problem(code: str, birth: BirthDate, reference: Reference) -> str | None:
    if birth.month is None or birth.day is None or birth.year < COG_FIRST_DAY.year:
        return None  # the COG does not decide
    try:
        day = date(birth.year, birth.month, birth.day)
    except ValueError:
        return None
    if code.startswith("976") and day < MAYOTTE_IN_THE_COG:
        return None
    if code.startswith(OVERSEAS_COLLECTIVITIES):
        return None  # not in the communes' file: the COG loaded does not decide
    periods = reference.commune(code)
    for period in periods:
        if period.start <= day and (period.end is None or day < period.end):
            return None
    if not periods:
        return "is not a commune code of the COG since 1943; check the code"
    hint = _hint(code, day, reference)
    return f"did not exist on the birth date{hint}; check the code"


def _hint(code: str, day: date, reference: Reference) -> str:
    """Which way the code moved, from the COG's changes: never the codes nor the day, which
    would give the birth place and date back to the platform (personal data)."""
    for move in sorted(reference.moves(code), key=lambda m: m.day):
        if move.after == code and move.before != code and move.day > day:
            return " (the commune had another code on that date: see the COG's changes)"
    for move in sorted(reference.moves(code), key=lambda m: m.day):
        if move.before == code and move.after != code and move.day <= day:
            return " (the code had been replaced by that date: see the COG's changes)"
    return ""
