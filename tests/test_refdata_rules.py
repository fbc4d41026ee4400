"""CONTRACT §11's rules, each with its field and kind, on reference data loaded from the real
excerpts (France compétences' XML export, INSEE's COG) through the state."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from accrochage.models.decode import decode
from accrochage.models.problems import Problem
from accrochage.models.reference import Period
from accrochage.models.registry import Certifier, Registry
from accrochage.refdata.load import load_refdata, source_warnings
from accrochage.refdata.memory import MemoryReference, ReferenceHolder
from accrochage.state.base import RefdataSource
from accrochage.state.sqlite import SqliteStore
from tests.factories import EMITTER, delivered_event
from tests.refdata_files import cog_folder, fc, refdata_dir

__all__ = ["refdata_dir"]

SIRET = "79279132900016"
"""SIMPLON.CO, a certifier of RS5000 and RS6604 in the real export."""
CODES = ("RS5000", "RS6604", "RS6232", "RS7423", "RNCP35419", "RNCP37488", "RNCP39568", "RS99999")
LATER = date(2040, 1, 1)
"""`today` for decoding: no delivery date of these tests is in the future."""


@pytest.fixture(scope="module")
def reference(refdata_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("refdata")
    store = SqliteStore(folder / "state.db")
    load_refdata(store.refdata(), fc(refdata_dir), cog_folder(folder / "cog"))
    loaded = ReferenceHolder(store.refdata()).current()
    assert loaded is not None
    yield loaded
    store.close()


def registry(siret: str | None = SIRET) -> Registry:
    return Registry(
        EMITTER, [Certifier("pix", "03VML243", "MCFCER000209", frozenset(CODES), siret)]
    )


def check(
    reference: MemoryReference | None,
    code: str = "RS6604",
    delivered_on: str = "2026-11-18",
    *,
    siret: str | None = SIRET,
    birth: str | dict[str, Any] = "1993-05-23",
    insee: str | None = None,
    registered: str | None = None,
) -> tuple[list[Problem], list[Problem]]:
    place = {"insee_code": insee, "city": "X"} if insee else None
    event = delivered_event(
        certification={"type": "RNCP" if code.startswith("RNCP") else "RS", "code": code},
        delivered_on=delivered_on,
        exam=None,
        registration={"date": registered} if registered else None,
        holder={
            "birth_name": "Haba",
            "first_names": ["Bart"],
            "birth_date": birth,
            "sex": "M",
            "birth_place": place,
        },
    )
    decoded = decode(event, registry(siret), LATER, reference)
    return decoded.errors, decoded.warnings


def fields(problems: list[Problem]) -> list[str]:
    return [p.field for p in problems]


def test_a_known_active_code_gives_nothing(reference: MemoryReference) -> None:
    assert check(reference) == ([], [])


def test_an_unknown_code_is_an_error(reference: MemoryReference) -> None:
    errors, warnings = check(reference, "RS99999")
    assert fields(errors) == ["certification.code"] and "RS99999" in errors[0].message
    assert warnings == []


def test_delivery_after_the_limit_is_an_error(reference: MemoryReference) -> None:
    # RNCP39568: end of registration 2029-08-31, last day of delivery 2034-08-31.
    assert check(reference, "RNCP39568", "2034-08-31", siret=None, registered="2029-01-01") == (
        [],
        [],
    )
    errors, _ = check(reference, "RNCP39568", "2034-09-01", siret=None, registered="2029-01-01")
    assert fields(errors) == ["delivered_on"] and "2034-08-31" in errors[0].message


def test_delivery_after_the_end_of_registration_is_a_warning(
    reference: MemoryReference,
) -> None:
    # RNCP37488 has no DATE_LIMITE_DELIVRANCE: only the end of registration (2028-08-31).
    errors, warnings = check(reference, "RNCP37488", "2028-09-01", siret=None)
    assert errors == [] and fields(warnings) == ["delivered_on"]
    # Registered before the end: may still receive it.
    assert check(reference, "RNCP37488", "2028-09-01", siret=None, registered="2028-06-01") == (
        [],
        [],
    )
    _, warnings = check(reference, "RNCP37488", "2028-09-01", siret=None, registered="2028-09-01")
    assert fields(warnings) == ["delivered_on"]


def test_a_replaced_code_is_a_warning_naming_the_new_one(reference: MemoryReference) -> None:
    errors, warnings = check(reference, "RS5000", "2024-05-01")
    assert errors == []
    assert fields(warnings) == ["certification.code"] and "RS6604" in warnings[0].message


RS6232_ACTIVE = "93905426800023"
"""The one certifier of RS6232 the real export says is active."""


def test_an_inactive_fiche_alone_gives_nothing(reference: MemoryReference) -> None:
    fiche = reference.fiche("RS6232")
    assert fiche is not None and not fiche.active and fiche.replaced_by
    errors, warnings = check(reference, "RS6232", "2026-01-10", siret=RS6232_ACTIVE)
    assert errors == [] and fields(warnings) == ["certification.code"]  # replaced, not inactive
    alone = MemoryReference(
        kinds=frozenset({"RS"}), fiches={"RS6232": replace(fiche, replaced_by=())}
    )
    assert check(alone, "RS6232", "2026-01-10", siret=RS6232_ACTIVE) == ([], [])


def test_a_siret_not_among_the_certifiers_is_a_warning(reference: MemoryReference) -> None:
    errors, warnings = check(reference, "RS6604", siret="11004301500012")
    assert errors == [] and fields(warnings) == ["certifier"]
    assert check(reference, "RS6604", siret=None) == ([], [])


def test_a_siret_proves_nothing_when_a_certifier_has_none(reference: MemoryReference) -> None:
    """A fiche one of whose certifiers has no SIRET in the export (about a third of them do
    not): the configured SIRET may be that certifier's, so no warning."""
    fiche = reference.fiche("RS6604")
    assert fiche is not None and fiche.sirets and not fiche.unidentified_certifiers
    unsure = MemoryReference(
        kinds=frozenset({"RS"}),
        fiches={"RS6604": replace(fiche, unidentified_certifiers=True)},
    )
    assert check(unsure, "RS6604", siret="11004301500012") == ([], [])


ADX_LATE, ADX_EARLY = "84210466300039", "84210466300013"
"""ADX FORMATION, listed among RS6232's certifiers as `Inactif` since 27/11/2025 and
04/08/2025 in the real RS export (RS6232 is also replaced by RS7485: its own warning)."""


def test_a_certifier_inactive_before_the_delivery_is_a_warning(
    reference: MemoryReference,
) -> None:
    """Every listed SIRET counted as registered, inactive or not: delivering after the
    certifier's registration ended gave no warning."""
    fiche = reference.fiche("RS6232")
    assert fiche is not None
    assert fiche.inactive == ((ADX_EARLY, date(2025, 8, 4)), (ADX_LATE, date(2025, 11, 27)))
    _, warnings = check(reference, "RS6232", "2026-07-25", siret=ADX_LATE)
    (inactive,) = [w for w in warnings if w.field == "certifier"]
    assert f"SIRET {ADX_LATE} is inactive since 2025-11-27 among RS6232's" in inactive.message
    for day in ("2025-11-27", "2025-11-01"):  # on the day its state changed, or before
        _, warnings = check(reference, "RS6232", day, siret=ADX_LATE)
        assert "certifier" not in fields(warnings)
    _, warnings = check(reference, "RS6232", "2026-07-25", siret=RS6232_ACTIVE)
    assert "certifier" not in fields(warnings), "an active certifier of the same fiche"
    undated = MemoryReference(
        kinds=frozenset({"RS"}), fiches={"RS6232": replace(fiche, inactive=((ADX_LATE, None),))}
    )
    _, warnings = check(undated, "RS6232", "2025-01-01", siret=ADX_LATE)
    assert [w.message for w in warnings if w.field == "certifier"] == [
        f"the configured SIRET {ADX_LATE} is inactive among RS6232's certifiers in the RNCP/RS "
        "export (ETAT_CERTIFICATEUR): check that the certifier may still deliver it"
    ]


def test_corsica_before_and_after_1976(reference: MemoryReference) -> None:
    assert check(reference, insee="20004", birth="1970-05-23") == ([], [])
    assert check(reference, insee="2A004", birth="1980-05-23") == ([], [])
    _, warnings = check(reference, insee="2A004", birth="1970-05-23")
    assert fields(warnings) == ["holder.birth_place.insee_code"]
    # The way the code moved, never a code nor a date: the birth place and date are personal
    # data, and the message goes back to the platform.
    assert "had another code on that date" in warnings[0].message
    for personal in ("20004", "2A004", "1970", "1976"):
        assert personal not in warnings[0].message
    _, warnings = check(reference, insee="20004", birth="1980-05-23")
    assert fields(warnings) == ["holder.birth_place.insee_code"]
    assert "had been replaced by that date" in warnings[0].message
    assert "2A004" not in warnings[0].message and "20004" not in warnings[0].message


def test_a_merged_commune(reference: MemoryReference) -> None:
    # 01039 Béon merged into Culoz-Béon on 2023-01-01.
    assert check(reference, insee="01039", birth="2000-01-01") == ([], [])
    _, warnings = check(reference, insee="01039", birth="2023-06-01")
    assert fields(warnings) == ["holder.birth_place.insee_code"]


def test_only_where_the_cog_decides(reference: MemoryReference) -> None:
    # Before 1943, or a partial birth date: the COG cannot say.
    assert check(reference, insee="2A004", birth="1942-12-31") == ([], [])
    partial = {"year": 1970, "month": None, "day": None}
    assert check(reference, insee="2A004", birth=partial) == ([], [])
    # Arrondissements exist.
    assert check(reference, insee="75101", birth="1990-01-01") == ([], [])
    _, warnings = check(reference, insee="01999", birth="1990-01-01")
    assert fields(warnings) == ["holder.birth_place.insee_code"]


def test_a_birth_in_mayotte_before_it_entered_the_cog_is_not_judged() -> None:
    """Mayotte's communes enter the COG on 2011-03-31 with no code before: a holder born in
    Dzaoudzi in 1990 was told their code "did not exist on the birth date", which nobody
    could fix."""
    cog = MemoryReference(
        has_communes=True, communes_by_code={"97608": [Period(date(2011, 3, 31), None)]}
    )
    assert check(cog, insee="97608", birth="1990-01-01") == ([], [])
    assert check(cog, insee="97608", birth="2012-01-01") == ([], [])
    _, warnings = check(cog, insee="97699", birth="2012-01-01")
    assert fields(warnings) == ["holder.birth_place.insee_code"], "after it, the COG decides"


def test_a_birth_in_an_overseas_collectivity_is_not_judged(
    reference: MemoryReference,
) -> None:
    """INSEE lists the communes of Saint-Pierre-et-Miquelon, Saint-Barthélemy, Saint-Martin,
    Wallis-et-Futuna, French Polynesia and New Caledonia in the overseas collectivities'
    files, not in `v_commune_depuis_1943`: a holder born in Nouméa (98818) was told their
    real code "is not a commune code of the COG"."""
    for code in ("97502", "97701", "97801", "98611", "98735", "98818"):
        assert check(reference, insee=code, birth="1990-01-01") == ([], []), code
    _, warnings = check(reference, insee="97999", birth="1990-01-01")
    assert fields(warnings) == ["holder.birth_place.insee_code"], "a department's: judged"


def test_a_country_code(reference: MemoryReference) -> None:
    assert check(reference, insee="99134") == ([], [])
    assert check(reference, insee="99313") == ([], [])
    _, warnings = check(reference, insee="99998")
    assert fields(warnings) == ["holder.birth_place.insee_code"]
    assert "99998" not in warnings[0].message and "not a country" in warnings[0].message


def test_without_reference_data_the_rules_are_not_applied(reference: MemoryReference) -> None:
    assert check(None, "RS99999", insee="2A004", birth="1970-05-23") == ([], [])
    assert check(None, "RNCP39568", "2035-01-01", siret="11004301500012") == ([], [])


def test_a_missing_part_skips_its_rule_only(refdata_dir: Path, tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    try:
        load_refdata(store.refdata(), None, cog_folder(tmp_path / "cog", countries=False))
        partial = ReferenceHolder(store.refdata()).current()
        assert partial is not None
        assert check(partial, "RS99999", insee="99998") == ([], [])  # no export, no countries
        _, warnings = check(partial, insee="2A004", birth="1970-05-23")
        assert fields(warnings) == ["holder.birth_place.insee_code"]
    finally:
        store.close()


def test_old_reference_data_warns_at_load_never_on_an_event() -> None:
    today = date(2026, 12, 1)

    def source(kind: str, day: date | None, vintage: int | None) -> RefdataSource:
        return RefdataSource(kind, day, vintage, (), "", today, {}, ())  # type: ignore[arg-type]

    fresh = [source("rncp", today - timedelta(days=3), None), source("cog", None, 2025)]
    assert source_warnings(fresh, today, timedelta(days=30)) == []
    old = [source("rncp", today - timedelta(days=31), None), source("cog", None, 2024)]
    warnings = source_warnings(old, today, timedelta(days=30))
    assert len(warnings) == 2
    assert "31 days old" in warnings[0] and "2024" in warnings[1]
    (unknown,) = source_warnings([source("cog", None, None)], today, timedelta(days=30))
    assert unknown.startswith("the COG's year is unknown") and "older" not in unknown


def test_a_registration_that_fails_on_its_own_is_not_blamed_by_the_reference_rules(
    reference: MemoryReference,
) -> None:
    """Over the rest of an invalid event (its `registration` set aside for a wrong
    `access_mode`), the end-of-registration rule said `give registration.date`, which was
    given: the reference data's rules do not run on a part of an event."""
    event = delivered_event(
        certification={"type": "RNCP", "code": "RNCP37488"},
        delivered_on="2028-09-01",
        registration={"access_mode": "BOGUS", "date": "2028-06-01"},
    )
    decoded = decode(event, registry(None), LATER, reference)
    assert fields(decoded.errors) == ["registration.access_mode"]
    assert decoded.warnings == []


def test_the_reference_rules_run_beside_a_field_that_failed(reference: MemoryReference) -> None:
    """An unknown code, a replaced one and a SIRET the fiche does not list are found beside
    a wrong `exam.mode`, not one resubmission later; the rules that read a failing field
    (the delivery date against the fiche's last day) stay quiet."""

    def partial(code: str, siret: str | None = None, **changes: Any) -> tuple[list[str], ...]:
        event = delivered_event(
            certification={"type": "RNCP" if code.startswith("RNCP") else "RS", "code": code},
            exam={"mode": "BOGUS"},
            **changes,
        )
        decoded = decode(event, registry(siret), LATER, reference)
        return fields(decoded.errors), fields(decoded.warnings)

    assert partial("RS99999") == (["exam.mode", "certification.code"], [])
    assert partial("RS5000", SIRET, delivered_on="2024-05-01") == (
        ["exam.mode"],
        ["certification.code"],
    )
    assert partial("RS6604", "11004301500012") == (["exam.mode"], ["certifier"])
    assert partial("RNCP39568", delivered_on="2034-09-01", registration={"date": "2029-01-01"})[
        0
    ] == ["exam.mode", "delivered_on"]
    late = partial("RNCP39568", delivered_on="2034-13-01", registration={"date": "2029-01-01"})
    assert late == (["delivered_on", "exam.mode"], [])  # the field's own error, in field order
    assert "2034-08-31" not in str(late)
