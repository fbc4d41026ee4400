"""Rendering events into a CDC flux, the XSD gate, and releasing files to the outbox.

Every rendered file is checked against the official 1.1.2 XSD (`official_xsd`) and the bundled
project XSD, and read back: each value must be the event's.
"""

from __future__ import annotations

import hashlib
import io
import re
import unicodedata
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from accrochage.errors import RenderError, SchemaValidationError
from accrochage.models.decode import decode
from accrochage.models.event import DeliveredEvent
from accrochage.models.registry import Certifier
from accrochage.sinks import gate
from accrochage.sinks.gate import check_file
from accrochage.sinks.outbox import file_name, release
from accrochage.sinks.profiles import NAMESPACE, PROFILES, XSI
from accrochage.sinks.render import FluxHeader, horodatage, render_flux
from accrochage.sinks.xsd_messages import reduce_schema_error
from tests.factories import (
    EMITTER,
    HOLDER_NIR,
    PIX,
    TODAY,
    cpf_file_event,
    delivered_event,
    make_nir,
    make_registry,
)

REGISTRY = make_registry()
NS = {"cpf": NAMESPACE}
NIL = "<xsi:nil>"
XSI_NIL = f"{{{XSI}}}nil"
PROJECT_112 = PROFILES["1.1.2"].bundled_xsd
PROJECT_115 = PROFILES["1.1.5"].bundled_xsd
WINTER = datetime(2026, 1, 15, 10, 0, 0, tzinfo=UTC)
SUMMER = datetime(2026, 7, 15, 10, 0, 0, tzinfo=UTC)
HORODATAGE = re.compile(
    r"(19|20)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])T(2[0-3]|[01][0-9]):[0-5][0-9]:"
    r"[0-5][0-9](\+|-)(:2[0-3]|[01][0-9]):[0-5][0-9]"
)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def model(raw: dict[str, Any]) -> DeliveredEvent:
    decoded = decode(raw, REGISTRY, TODAY)
    assert decoded.errors == [], decoded.errors
    assert isinstance(decoded.event, DeliveredEvent)
    return decoded.event


def header(
    version: str = "1.1.2",
    created_at: datetime = WINTER,
    id_flux: str = "batch-1",
    certifier: Certifier = PIX,
) -> FluxHeader:
    return FluxHeader(id_flux, created_at, EMITTER, certifier, PROFILES[version])


def render(events: Iterable[DeliveredEvent], flux: FluxHeader | None = None, **kw: Any) -> bytes:
    out = io.BytesIO()
    stats = render_flux(out, flux or header(), events, **kw)
    data = out.getvalue()
    assert stats.bytes_written == len(data)
    return data


@lru_cache(maxsize=8)
def schema(path: Path) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(path)))


def assert_schema_valid(data: bytes, *xsds: Path) -> None:
    doc = etree.ElementTree(etree.fromstring(data))
    for xsd in xsds:
        checker = schema(xsd)
        assert checker.validate(doc), f"{xsd.name}: {checker.error_log}"


def _nil_or_text(element: etree._Element) -> str:
    if element.get(XSI_NIL) == "true":
        assert element.text is None and len(element) == 0
        return NIL
    return element.text or ""


def leaves(element: etree._Element, prefix: str = "") -> list[tuple[str, str]]:
    """Every leaf under `element`, as (path of local names, text or NIL), in document order."""
    found: list[tuple[str, str]] = []
    for child in element:
        if not isinstance(child.tag, str):
            continue
        path = f"{prefix}{etree.QName(child).localname}"
        if len(child) == 0:
            found.append((path, _nil_or_text(child)))
        else:
            found.extend(leaves(child, path + "/"))
    return found


def _birth(value: Any) -> tuple[int, int | None, int | None]:
    if isinstance(value, str):
        full = date.fromisoformat(value)
        return full.year, full.month, full.day
    return value["year"], value.get("month"), value.get("day")


def expected_leaves(raw: dict[str, Any], national: bool = False) -> list[tuple[str, str]]:
    """What the CDC passage must say for this event, written from SPEC §5, independently."""
    raw = as_composed(raw)
    out: list[tuple[str, str]] = []

    def opt(name: str, value: Any) -> None:
        if value is not None:
            out.append((name, str(value)))

    def nil(name: str, value: Any) -> None:
        out.append((name, NIL if value is None else str(value)))

    def boolean(name: str, value: bool) -> None:
        out.append((name, "true" if value else "false"))

    opt("idTechnique", raw["record_id"])
    opt("urlPreuve", raw.get("proof_url"))
    opt("libelleOption", raw.get("option_label"))
    opt("obtentionCertification", raw["obtention"])
    boolean("donneeCertifiee", raw.get("certified", True))
    exam = raw.get("exam") or {}
    opt("dateDebutExamen", exam.get("start"))
    opt("dateFinExamen", exam.get("end"))
    opt("modalitePassageExamen", exam.get("mode"))
    opt("codePostalCentreExamen", exam.get("center_postal_code"))
    opt("dateDebutValidite", raw["delivered_on"])
    nil("dateFinValidite", raw.get("valid_until"))
    boolean("presenceNiveauLangueEuro", raw.get("language_level") is not None)
    opt("niveauLangueEuropeen", raw.get("language_level"))
    digital = raw.get("digital_level")
    boolean("presenceNiveauNumeriqueEuro", digital is not None)
    if digital is not None:
        base = "niveauNumeriqueEuropeen"
        results = digital.get("results") or []
        if digital.get("general_score") is None and not results:
            out.append((base, ""))
        opt(f"{base}/scoreGeneral", digital.get("general_score"))
        for result in results:
            before = len(out)
            opt(f"{base}/resultats/resultat/niveau", result.get("level"))
            opt(f"{base}/resultats/resultat/domaineCompetenceId", result.get("area"))
            opt(f"{base}/resultats/resultat/competenceId", result.get("competence"))
            if len(out) == before:
                out.append((f"{base}/resultats/resultat", ""))
    nil("scoring", raw.get("score"))
    nil("mentionValidee", raw.get("mention"))
    registration = raw.get("registration") or {}
    nil("modalitesInscription/modaliteAcces", registration.get("access_mode"))
    opt("modalitesInscription/voieAccessVAE", registration.get("vae_path"))
    opt("modalitesInscription/initiativeInscription", registration.get("initiative"))
    opt("modalitesInscription/dateInscription", registration.get("date"))
    holder = raw.get("holder")
    if holder is not None and national:
        branch = "identificationTitulaire/identifiantNational"
        opt(f"{branch}/nir", holder["nir"][:13])
        opt(f"{branch}/nomNaissance", holder["birth_name"])
    elif holder is not None:
        branch = "identificationTitulaire/titulaire"
        opt(f"{branch}/nomNaissance", holder["birth_name"])
        nil(f"{branch}/nomUsage", holder.get("usage_name"))
        for position, first_name in enumerate(holder["first_names"], start=1):
            opt(f"{branch}/prenom{position}", first_name)
        year, month, day = _birth(holder["birth_date"])
        opt(f"{branch}/anneeNaissance", year)
        nil(f"{branch}/moisNaissance", month)
        nil(f"{branch}/jourNaissance", day)
        opt(f"{branch}/sexe", holder["sex"])
        place = holder.get("birth_place") or {}
        insee = place.get("insee_code")
        commune = f"{branch}/codeCommuneNaissance"
        if insee is not None:
            opt(f"{commune}/codeInseeNaissance/codeInsee", insee)
        else:
            nil(f"{commune}/codePostalNaissance/codePostal", place.get("postal_code"))
        opt(f"{branch}/libelleCommuneNaissance", place.get("city"))
        abroad = insee[2:] if insee is not None and insee.startswith("99") else None
        opt(f"{branch}/codePaysNaissance", place.get("country_code") or abroad)
        opt(f"{branch}/libellePaysNaissance", place.get("country"))
    else:
        branch = "identificationTitulaire/dossierFormation"
        cpf = raw["cpf_file"]
        opt(f"{branch}/idDossier", cpf["id"])
        opt(f"{branch}/nomTitulaire", cpf["holder_name"])
        opt(f"{branch}/prenom1Titulaire", cpf["holder_first_name"])
    opt("verbatim", raw.get("verbatim"))
    return out


def certifications(data: bytes) -> list[tuple[str, str, list[etree._Element]]]:
    root = etree.fromstring(data)
    return [
        (
            cert.findtext("cpf:type", namespaces=NS) or "",
            cert.findtext("cpf:code", namespaces=NS) or "",
            cert.findall("cpf:passageCertifications/cpf:passageCertification", NS),
        )
        for cert in root.iterfind(".//cpf:certification", NS)
    ]


def passages(data: bytes) -> list[etree._Element]:
    return [p for _, _, group in certifications(data) for p in group]


def national(raw: dict[str, Any], version: str) -> bool:
    holder = raw.get("holder")
    return (
        version == "1.1.5"
        and holder is not None
        and holder.get("nir") is not None
        and holder["nir"][0] in "12"
    )


def assert_round_trip(
    data: bytes, raws: list[dict[str, Any]], version: str = "1.1.2", id_flux: str = "batch-1"
) -> None:
    root = etree.fromstring(data)
    found = passages(data)
    assert len(found) == len(raws)
    for passage, raw in zip(found, raws, strict=True):
        assert leaves(passage) == expected_leaves(raw, national(raw, version))
    assert root.findtext("cpf:idFlux", namespaces=NS) == id_flux
    assert root.findtext("cpf:emetteur/cpf:idClient", namespaces=NS) == EMITTER.id_client
    certifier = root.find("cpf:emetteur/cpf:certificateurs/cpf:certificateur", NS)
    assert certifier is not None
    assert certifier.findtext("cpf:idClient", namespaces=NS) == PIX.id_client
    assert certifier.findtext("cpf:idContrat", namespaces=NS) == PIX.id_contrat
    for _, _, group in certifications(data):
        cert = group[0].getparent().getparent()  # type: ignore[union-attr]
        assert cert.findtext("cpf:natureDeposant", namespaces=NS) == EMITTER.nature


def group_by_code(raws: list[dict[str, Any]]) -> list[dict[str, Any]]:
    order: dict[str, int] = {}
    for raw in raws:
        order.setdefault(raw["certification"]["code"], len(order))
    return sorted(raws, key=lambda raw: order[raw["certification"]["code"]])


def check_everything(raws: list[dict[str, Any]], official_xsd: Path) -> bytes:
    raws = group_by_code(raws)
    data = render([model(raw) for raw in raws])
    assert_schema_valid(data, official_xsd, PROJECT_112)
    assert_round_trip(data, raws)
    return data


def with_id(raw: dict[str, Any], record_id: str) -> dict[str, Any]:
    raw["record_id"] = record_id
    return raw


# --------------------------------------------------------------------------------------------
# Fixed events covering the model
# --------------------------------------------------------------------------------------------


def full_event() -> dict[str, Any]:
    """Every optional element present."""
    return delivered_event(
        record_id="FULL-1",
        certification={"type": "RNCP", "code": "RNCP35726"},
        obtention="PAR_ADMISSION",
        certified=False,
        valid_until="2031-11-17",
        score="12.4/20",
        mention="MENTION_TRES_BIEN_AVEC_FELICITATIONS_DU_JURY",
        language_level="B2",
        digital_level={
            "general_score": 1000,
            "results": [
                {"level": 1, "area": "1", "competence": "1"},
                {"level": 8, "area": "5", "competence": "4"},
                {"level": 3},
                {},
            ],
        },
        exam={
            "start": "2026-11-02",
            "end": "2026-11-04",
            "mode": "MIXTE",
            "center_postal_code": "123456789",
        },
        registration={
            "access_mode": "VAE",
            "vae_path": "CONGES_VAE",
            "initiative": "EMPLOYEUR",
            "date": "2025-09-01",
        },
        proof_url="https://example.org/proof?id=1&lang=fr",
        option_label="Mention spéciale",
        verbatim="TOSA",
        holder={
            "birth_name": "Lefèvre",
            "usage_name": "Martin",
            "first_names": ["Anne", "Marie", "Zoé"],
            "birth_date": "1990-02-28",
            "sex": "F",
            "birth_place": {
                "insee_code": "2A004",
                "city": "AJACCIO",
                "country_code": "100",
                "country": "FRANCE",
            },
            "nir": None,
        },
    )


def nil_event() -> dict[str, Any]:
    """Every nillable element nil, every optional one absent."""
    return {
        "event_id": "e-nil",
        "record_id": "NIL-1",
        "certification": {"type": "RS", "code": "RS5875"},
        "delivered_on": "2026-11-18",
        "obtention": "PAR_SCORING",
        "holder": {
            "birth_name": "Haba",
            "first_names": ["Bart"],
            "birth_date": {"year": 1993, "month": None, "day": None},
            "sex": "M",
        },
    }


def fixed_events() -> list[dict[str, Any]]:
    events = [full_event(), nil_event()]
    month_only = delivered_event(record_id="MONTH-ONLY")
    month_only["holder"]["birth_date"] = {"year": 1993, "month": 5}
    events.append(month_only)
    no_place = delivered_event(record_id="NO-PLACE")
    del no_place["holder"]["birth_place"]
    events.append(no_place)
    place_unknown = delivered_event(record_id="PLACE-UNKNOWN")
    place_unknown["holder"]["birth_place"] = {"city": "Lyon"}
    events.append(place_unknown)
    abroad = delivered_event(record_id="ABROAD")
    abroad["holder"]["birth_place"] = {
        "insee_code": "99109",
        "city": "Berlin",
        "country": "ALLEMAGNE",
    }
    events.append(abroad)
    abroad_coded = delivered_event(record_id="ABROAD-CODED")
    abroad_coded["holder"]["birth_place"] = {"insee_code": "99350", "country_code": "350"}
    events.append(abroad_coded)
    names = delivered_event(record_id="NAMES&<>'\"")
    names["holder"].update(
        birth_name="D'Amico & <Fils>",
        usage_name='N\'Diaye "dit" Nguyễn',
        first_names=["Éloïse", "Jean-Noël", "Ő&<"],
    )
    names["holder"]["birth_place"]["city"] = "L'Haÿ-les-Roses"
    events.append(names)
    events.append(with_id(cpf_file_event(), "CPF-1"))
    two_names = delivered_event(record_id="TWO-NAMES")
    two_names["holder"]["first_names"] = ["Anne", "Lou"]
    events.append(two_names)
    return events


def test_fixed_events_render_valid_and_round_trip(tmp_path: Path, official_xsd: Path) -> None:
    data = check_everything(fixed_events(), official_xsd)
    path = _write(data, tmp_path)
    assert check_file(path, official_xsd).passages == len(fixed_events())
    assert check_file(path, PROJECT_112).passages == len(fixed_events())


ENUM_VALUES: dict[str, tuple[str, ...]] = {
    "mention": (
        "SANS_MENTION",
        "MENTION_ASSEZ_BIEN",
        "MENTION_BIEN",
        "MENTION_TRES_BIEN",
        "MENTION_TRES_BIEN_AVEC_FELICITATIONS_DU_JURY",
    ),
    "language_level": ("A1", "A2", "B1", "B2", "C1", "C2", "INSUFFISANT"),
    "exam.mode": ("A_DISTANCE", "EN_PRESENTIEL", "MIXTE"),
    "registration.access_mode": (
        "FORMATION_INITIALE_HORS_APPRENTISSAGE",
        "FORMATION_INITIALE_APPRENTISSAGE",
        "FORMATION_CONTINUE_HORS_CONTRAT_DE_PROFESSIONNALISATION",
        "FORMATION_CONTINUE_CONTRAT_DE_PROFESSIONNALISATION",
        "VAE",
        "EQUIVALENCE_DIPLOME_ETRANGER",
        "CANDIDAT_LIBRE",
    ),
    "registration.vae_path": ("CONGES_VAE", "VAE_CLASSIQUE"),
    "registration.initiative": ("CERTIFIE", "OF", "POLE_EMPLOI", "EMPLOYEUR", "AUTRE"),
    "obtention": ("PAR_ADMISSION", "PAR_SCORING"),
    "holder.sex": ("M", "F"),
}


def enum_events() -> list[dict[str, Any]]:
    events = []
    for path, values in ENUM_VALUES.items():
        for value in values:
            raw = delivered_event(record_id=f"{path}={value}")
            node = raw
            *parents, last = path.split(".")
            for step in parents:
                node = node[step]
            node[last] = value
            if path == "registration.vae_path":
                raw["registration"]["access_mode"] = "VAE"
            events.append(raw)
    return events


def test_every_enumeration_value_renders_valid(official_xsd: Path) -> None:
    data = check_everything(enum_events(), official_xsd)
    text = data.decode()
    for values in ENUM_VALUES.values():
        for value in values:
            assert f">{value}</cpf:" in text


@pytest.mark.parametrize("nature", ["CERTIFICATEUR", "TIERS_CONFIANCE"])
def test_both_depositor_natures_render_valid(nature: str, official_xsd: Path) -> None:
    flux = FluxHeader("b", WINTER, type(EMITTER)(EMITTER.id_client, nature), PIX, PROFILES["1.1.2"])
    data = render([model(delivered_event())], flux)
    assert_schema_valid(data, official_xsd, PROJECT_112)
    assert f"<cpf:natureDeposant>{nature}</cpf:natureDeposant>" in data.decode()


def test_nil_cases_are_explicit(official_xsd: Path) -> None:
    data = check_everything([nil_event()], official_xsd)
    (passage,) = passages(data)
    values = dict(leaves(passage))
    for name in (
        "dateFinValidite",
        "scoring",
        "mentionValidee",
        "modalitesInscription/modaliteAcces",
    ):
        assert values[name] == NIL, name
    titulaire = "identificationTitulaire/titulaire"
    for name in ("nomUsage", "moisNaissance", "jourNaissance"):
        assert values[f"{titulaire}/{name}"] == NIL, name
    assert values[f"{titulaire}/codeCommuneNaissance/codePostalNaissance/codePostal"] == NIL
    assert values["presenceNiveauLangueEuro"] == "false"
    assert values["presenceNiveauNumeriqueEuro"] == "false"
    assert "niveauLangueEuropeen" not in values and "niveauNumeriqueEuropeen" not in values


def test_foreign_birth_gets_the_country_from_the_insee_code(official_xsd: Path) -> None:
    events = [e for e in fixed_events() if e["record_id"] in {"ABROAD", "ABROAD-CODED"}]
    data = check_everything(events, official_xsd)
    abroad, coded = passages(data)
    assert abroad.findtext(".//cpf:codeInsee", namespaces=NS) == "99109"
    assert abroad.findtext(".//cpf:codePaysNaissance", namespaces=NS) == "109"
    assert abroad.find(".//cpf:codePostalNaissance", NS) is None
    assert coded.findtext(".//cpf:codePaysNaissance", namespaces=NS) == "350"


def test_a_given_country_code_wins_over_the_insee_code(official_xsd: Path) -> None:
    raw = delivered_event()
    raw["holder"]["birth_place"] = {"insee_code": "99109", "country_code": "DEU"}
    data = check_everything([raw], official_xsd)
    assert passages(data)[0].findtext(".//cpf:codePaysNaissance", namespaces=NS) == "DEU"


def test_a_french_insee_code_gives_no_country_code(official_xsd: Path) -> None:
    raw = delivered_event()
    raw["holder"]["birth_place"] = {"insee_code": "75056"}
    data = check_everything([raw], official_xsd)
    assert passages(data)[0].find(".//cpf:codePaysNaissance", NS) is None


def test_special_characters_are_escaped_and_read_back_equal(official_xsd: Path) -> None:
    (names,) = [e for e in fixed_events() if e["record_id"].startswith("NAMES")]
    data = check_everything([names], official_xsd)
    assert b"D'Amico &amp; &lt;Fils&gt;" in data
    assert "Nguyễn".encode() in data  # UTF-8, not character references
    (passage,) = passages(data)
    assert passage.findtext("cpf:idTechnique", namespaces=NS) == "NAMES&<>'\""
    assert passage.findtext(".//cpf:nomNaissance", namespaces=NS) == "D'Amico & <Fils>"
    assert passage.findtext(".//cpf:prenom3", namespaces=NS) == "Ő&<"


@pytest.mark.parametrize("count", [1, 2, 3])
def test_one_to_three_first_names_render_in_order(count: int, official_xsd: Path) -> None:
    raw = delivered_event()
    raw["holder"]["first_names"] = ["Anne", "Marie", "Zoé"][:count]
    data = check_everything([raw], official_xsd)
    (passage,) = passages(data)
    titulaire = passage.find(".//cpf:titulaire", NS)
    assert titulaire is not None
    names = [titulaire.findtext(f"cpf:prenom{i}", namespaces=NS) for i in (1, 2, 3)]
    assert names == ["Anne", "Marie", "Zoé"][:count] + [None] * (3 - count)


def test_several_codes_give_one_certification_block_each_in_input_order(official_xsd: Path) -> None:
    raws = [
        delivered_event(record_id="RS-a"),
        delivered_event(record_id="RS-b"),
        delivered_event(record_id="RS-c"),
        delivered_event(
            record_id="RNCP-a",
            certification={"type": "RNCP", "code": "RNCP35726"},
            obtention="PAR_ADMISSION",
        ),
        delivered_event(
            record_id="RNCP-b",
            certification={"type": "RNCP", "code": "RNCP35726"},
            mention="MENTION_BIEN",
        ),
    ]
    data = check_everything(raws, official_xsd)
    blocks = certifications(data)
    assert [(t, c) for t, c, _ in blocks] == [("RS", "RS5875"), ("RNCP", "RNCP35726")]
    ids = [[p.findtext("cpf:idTechnique", namespaces=NS) for p in group] for _, _, group in blocks]
    assert ids == [["RS-a", "RS-b", "RS-c"], ["RNCP-a", "RNCP-b"]]


def test_cpf_file_renders_a_dossier_formation(official_xsd: Path) -> None:
    data = check_everything([cpf_file_event()], official_xsd)
    (passage,) = passages(data)
    identification = passage.find("cpf:identificationTitulaire", NS)
    assert identification is not None
    assert [etree.QName(c).localname for c in identification] == ["dossierFormation"]
    assert identification.findtext(".//cpf:idDossier", namespaces=NS) == "1234567891011"


def test_values_at_their_maximum_length_render_valid(official_xsd: Path) -> None:
    raw = full_event()
    raw.update(record_id="r" * 255, proof_url="u" * 255, option_label="o" * 255, verbatim="v" * 255)
    raw["score"] = "s" * 255
    raw["exam"]["center_postal_code"] = "9" * 9
    raw["holder"].update(birth_name="é" * 60, usage_name="😀" * 60, first_names=["a" * 60] * 3)
    raw["holder"]["birth_place"].update(city="c" * 60, country="p" * 60)
    cpf = cpf_file_event(record_id="c" * 255)
    cpf["cpf_file"] = {"id": "1" * 13, "holder_name": "n" * 30, "holder_first_name": "f" * 20}
    check_everything([raw, cpf], official_xsd)


# --------------------------------------------------------------------------------------------
# Property: any valid event renders a valid file that says what the event says
# --------------------------------------------------------------------------------------------

_PRINTABLE = st.characters(exclude_categories=("Cc", "Cs", "Cn"))
_CHARS = st.one_of(st.sampled_from("&<>'\"; "), _PRINTABLE)
_SOLID = _PRINTABLE.filter(lambda c: not c.isspace())
FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(2099, 12, 31)


def text(max_size: int) -> st.SearchStrategy[str]:
    return st.text(_CHARS, min_size=1, max_size=max_size).map(str.strip).filter(bool)


def _composed(value: str) -> str:
    return unicodedata.normalize("NFC", value)


def words(max_size: int) -> st.SearchStrategy[str]:
    """Text someone wrote (names, places, labels): valid once composed (NFC can lengthen a
    text: U+2ADC is two code points composed) and with a visible character."""
    return text(max_size).filter(
        lambda value: (
            len(_composed(value)) <= max_size
            and any(unicodedata.category(c)[0] in "LNPS" for c in value)
        )
    )


WORDS_FIELDS = (
    ("option_label",),
    ("verbatim",),
    ("holder", "birth_name"),
    ("holder", "usage_name"),
    ("holder", "birth_place", "city"),
    ("holder", "birth_place", "country"),
    ("cpf_file", "holder_name"),
    ("cpf_file", "holder_first_name"),
)
"""The fields the product takes in Unicode's NFC (`models/text.readable`), and first_names."""


def as_composed(raw: dict[str, Any]) -> dict[str, Any]:
    """The event as the CDC must read it: its written texts composed (NFC), the rest as is."""
    copy = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    holder = copy.get("holder")
    if isinstance(holder, dict):
        if isinstance(holder.get("birth_place"), dict):
            holder["birth_place"] = dict(holder["birth_place"])
        if isinstance(holder.get("first_names"), list):
            holder["first_names"] = [_composed(n) for n in holder["first_names"]]
    for path in WORDS_FIELDS:
        where: Any = copy
        for key in path[:-1]:
            where = where.get(key) if isinstance(where, dict) else None
        if isinstance(where, dict) and isinstance(where.get(path[-1]), str):
            where[path[-1]] = _composed(where[path[-1]])
    return copy


def exact(size: int) -> st.SearchStrategy[str]:
    return st.text(_SOLID, min_size=size, max_size=size)


def iso(strategy: st.SearchStrategy[date]) -> st.SearchStrategy[str]:
    return strategy.map(date.isoformat)


@st.composite
def nirs(draw: st.DrawFn) -> str:
    sex = draw(st.sampled_from("12378"))
    year = draw(st.integers(0, 99))
    month = draw(st.sampled_from([*range(1, 13), 20, 42, 99]))
    department = draw(st.sampled_from(["75", "2A", "2B", "97", "99"]))
    rest = draw(st.integers(0, 999_999))
    return make_nir(f"{sex}{year:02d}{month:02d}{department}{rest:06d}")


@st.composite
def holders(draw: st.DrawFn, delivered: date) -> dict[str, Any]:
    born = draw(st.dates(FIRST_DAY, delivered))
    form = draw(st.sampled_from(["full", "year", "month", "dict-full"]))
    birth: Any = {
        "full": born.isoformat(),
        "year": {"year": born.year, "month": None, "day": None},
        "month": {"year": born.year, "month": born.month},
        "dict-full": {"year": born.year, "month": born.month, "day": born.day},
    }[form]
    holder: dict[str, Any] = {
        "birth_name": draw(words(60)),
        "usage_name": draw(st.none() | words(60)),
        "first_names": draw(st.lists(words(60), min_size=1, max_size=3)),
        "birth_date": birth,
        "sex": draw(st.sampled_from("MF")),
    }
    place_kind = draw(st.sampled_from(["insee", "abroad", "postal", "unknown", "none"]))
    if place_kind != "none":
        place: dict[str, Any] = {
            "city": draw(st.none() | words(60)),
            "country_code": draw(st.none() | exact(3)),
            "country": draw(st.none() | words(60)),
        }
        if place_kind == "insee":
            place["insee_code"] = draw(exact(5))
        elif place_kind == "abroad":
            place["insee_code"] = "99" + draw(st.text("0123456789", min_size=3, max_size=3))
        elif place_kind == "postal":
            place["postal_code"] = draw(text(9))
        holder["birth_place"] = place
    if draw(st.booleans()):
        holder["nir"] = draw(nirs())
    return holder


@st.composite
def valid_events(draw: st.DrawFn) -> dict[str, Any]:
    delivered = draw(st.dates(FIRST_DAY, TODAY))
    cert_type, code = draw(st.sampled_from([("RS", "RS5875"), ("RNCP", "RNCP35726")]))
    raw: dict[str, Any] = {
        "event_id": draw(text(255)),
        "record_id": draw(text(255)),
        "certification": {"type": cert_type, "code": code},
        "delivered_on": delivered.isoformat(),
        "obtention": draw(st.sampled_from(ENUM_VALUES["obtention"])),
    }

    def maybe(key: str, strategy: st.SearchStrategy[Any]) -> None:
        value = draw(st.none() | strategy)
        if value is not None or draw(st.booleans()):
            raw[key] = value

    if draw(st.booleans()):
        raw["certifier"] = "pix"
    maybe("valid_until", iso(st.dates(delivered, LAST_DAY)))
    if draw(st.booleans()):
        raw["certified"] = draw(st.booleans())  # optional, but not nullable
    maybe("score", text(255) | st.integers(0, 10**9))
    for key in ("mention", "language_level"):
        maybe(key, st.sampled_from(ENUM_VALUES[key]))
    maybe("proof_url", text(255))
    for key in ("option_label", "verbatim"):
        maybe(key, words(255))
    if draw(st.booleans()):
        result = st.fixed_dictionaries(
            {},
            optional={
                "level": st.integers(1, 8),
                "area": exact(1),
                "competence": exact(1),
            },
        )
        raw["digital_level"] = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "general_score": st.integers(1, 1000),
                    "results": st.lists(result, max_size=3),
                },
            )
        )
    if draw(st.booleans()):
        start = draw(st.none() | st.dates(FIRST_DAY, delivered))
        end = draw(st.none() | st.dates(start or FIRST_DAY, delivered))
        raw["exam"] = {
            "start": start and start.isoformat(),
            "end": end and end.isoformat(),
            "mode": draw(st.none() | st.sampled_from(ENUM_VALUES["exam.mode"])),
            "center_postal_code": draw(st.none() | text(9)),
        }
    if draw(st.booleans()):
        access = draw(st.none() | st.sampled_from(ENUM_VALUES["registration.access_mode"]))
        vae = draw(st.none() | st.sampled_from(ENUM_VALUES["registration.vae_path"]))
        raw["registration"] = {
            "access_mode": access,
            "vae_path": vae if access == "VAE" else None,
            "initiative": draw(st.none() | st.sampled_from(ENUM_VALUES["registration.initiative"])),
            "date": draw(st.none() | iso(st.dates(FIRST_DAY, LAST_DAY))),
        }
    if draw(st.integers(0, 3)) == 0:
        raw["cpf_file"] = {
            "id": draw(text(13)),
            "holder_name": draw(words(30)),
            "holder_first_name": draw(words(20)),
        }
    else:
        raw["holder"] = draw(holders(delivered))
    return raw


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raws=st.lists(valid_events(), min_size=1, max_size=3))
def test_any_valid_event_renders_a_valid_file_that_round_trips(
    raws: list[dict[str, Any]], official_xsd: Path
) -> None:
    raws = group_by_code(raws)
    decoded = [decode(raw, REGISTRY, TODAY) for raw in raws]
    for one in decoded:
        assert one.valid, one.errors
    events = [one.event for one in decoded]
    assert all(isinstance(e, DeliveredEvent) for e in events)
    data = render(events)  # type: ignore[arg-type]
    assert_schema_valid(data, official_xsd, PROJECT_112)
    assert_round_trip(data, raws)
    data_115 = render(events, header("1.1.5"))  # type: ignore[arg-type]
    assert_schema_valid(data_115, PROJECT_115)
    assert_round_trip(data_115, raws, "1.1.5")


# --------------------------------------------------------------------------------------------
# horodatage, determinism
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("created_at", "expected"),
    [
        (WINTER, "2026-01-15T11:00:00+01:00"),
        (SUMMER, "2026-07-15T12:00:00+02:00"),
        (WINTER.replace(microsecond=999_999), "2026-01-15T11:00:00+01:00"),
        (datetime(2026, 3, 29, 1, 0, 0, tzinfo=UTC), "2026-03-29T03:00:00+02:00"),
        (datetime(2026, 10, 25, 0, 59, 59, tzinfo=UTC), "2026-10-25T02:59:59+02:00"),
        (datetime(2026, 10, 25, 1, 0, 0, tzinfo=UTC), "2026-10-25T02:00:00+01:00"),
        (
            datetime(2026, 1, 15, 6, 0, tzinfo=timezone(timedelta(hours=-5))),
            "2026-01-15T12:00:00+01:00",
        ),
    ],
)
def test_horodatage_is_paris_time_with_its_offset(
    created_at: datetime, expected: str, official_xsd: Path
) -> None:
    assert horodatage(created_at) == expected
    assert HORODATAGE.fullmatch(expected)
    data = render([model(delivered_event())], header(created_at=created_at))
    assert etree.fromstring(data).findtext("cpf:horodatage", namespaces=NS) == expected
    assert_schema_valid(data, official_xsd)


def test_a_naive_batch_timestamp_is_refused() -> None:
    with pytest.raises(RenderError, match="timezone-aware"):
        horodatage(datetime(2026, 1, 15, 10, 0))
    with pytest.raises(RenderError):
        render([model(delivered_event())], header(created_at=datetime(2026, 1, 15, 10, 0)))


def test_rendering_twice_gives_the_same_bytes() -> None:
    raws = group_by_code(fixed_events() + enum_events())
    first = render([model(raw) for raw in raws], header(id_flux="same"))
    second = render([model(raw) for raw in raws], header(id_flux="same"))
    assert first == second
    assert first.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n')
    assert hashlib.sha256(first).hexdigest() == hashlib.sha256(second).hexdigest()


# --------------------------------------------------------------------------------------------
# Schema 1.1.5
# --------------------------------------------------------------------------------------------


def test_115_flux_says_creation_after_horodatage() -> None:
    data = render([model(delivered_event())], header("1.1.5"))
    root = etree.fromstring(data)
    names = [etree.QName(child).localname for child in root]
    assert names == ["idFlux", "horodatage", "action", "emetteur"]
    assert root.findtext("cpf:action", namespaces=NS) == "CREATION"
    assert_schema_valid(data, PROJECT_115)
    assert b"<cpf:action>" not in render([model(delivered_event())])


@pytest.mark.parametrize(
    ("first13", "sex"),
    [
        ("1930575056123", "M"),
        ("2930575056123", "F"),
        ("193052A123456", "M"),
        ("293052B123456", "F"),
    ],
)
def test_115_with_a_nir_renders_identifiant_national(first13: str, sex: str) -> None:
    raw = delivered_event()
    raw["holder"].update(nir=make_nir(first13), sex=sex)
    data = render([model(raw)], header("1.1.5"))
    assert_schema_valid(data, PROJECT_115)
    (passage,) = passages(data)
    identification = passage.find("cpf:identificationTitulaire", NS)
    assert identification is not None
    assert [etree.QName(c).localname for c in identification] == ["identifiantNational"]
    assert identification.findtext(".//cpf:nir", namespaces=NS) == first13
    assert identification.findtext(".//cpf:nomNaissance", namespaces=NS) == "Haba"
    assert passage.find(".//cpf:prenom1", NS) is None
    assert_round_trip(data, [raw], "1.1.5")


def test_115_without_a_nir_renders_titulaire_and_cpf_file_dossier() -> None:
    raws = [delivered_event(record_id="A"), with_id(cpf_file_event(), "B")]
    data = render([model(raw) for raw in raws], header("1.1.5"))
    assert_schema_valid(data, PROJECT_115)
    kinds = [
        etree.QName(p.find("cpf:identificationTitulaire", NS)[0]).localname  # type: ignore[index]
        for p in passages(data)
    ]
    assert kinds == ["titulaire", "dossierFormation"]
    assert_round_trip(data, raws, "1.1.5")


def test_112_never_exports_the_nir() -> None:
    raw = delivered_event()
    raw["holder"]["nir"] = HOLDER_NIR
    data = render([model(raw)])
    assert HOLDER_NIR[:13].encode() not in data
    assert b"identifiantNational" not in data


# --------------------------------------------------------------------------------------------
# Limits and refusals of the renderer
# --------------------------------------------------------------------------------------------


def test_max_bytes_smaller_than_the_output_is_refused() -> None:
    events = [model(with_id(delivered_event(), f"P{i}")) for i in range(5)]
    size = len(render(events))
    assert len(render(events, max_bytes=size)) == size  # exactly at the limit: fine
    with pytest.raises(RenderError, match="max_file_bytes"):
        render(events, max_bytes=size - 1)
    with pytest.raises(RenderError, match="max_file_bytes"):
        render(events, max_bytes=size // 3)


def test_non_contiguous_codes_are_refused() -> None:
    rncp = {"type": "RNCP", "code": "RNCP35726"}
    events = [
        model(delivered_event(record_id="1")),
        model(delivered_event(record_id="2", certification=rncp)),
        model(delivered_event(record_id="3")),
    ]
    with pytest.raises(RenderError, match="not contiguous"):
        render(events)


def test_zero_passages_are_refused() -> None:
    with pytest.raises(RenderError, match="no passage"):
        render([])


# --------------------------------------------------------------------------------------------
# The gate
# --------------------------------------------------------------------------------------------


def _write(data: bytes, folder: Path) -> Path:
    path = folder / f"flux-{len(list(folder.iterdir()))}.xml"
    path.write_bytes(data)
    return path


def fifty() -> bytes:
    return render([model(with_id(delivered_event(), f"P{i:03d}")) for i in range(50)])


@pytest.mark.parametrize("target", ["P001", "P025", "P049"])
def test_a_file_broken_in_the_middle_names_the_passage(
    tmp_path: Path, target: str, official_xsd: Path
) -> None:
    data = fifty()
    marker = f"<cpf:idTechnique>{target}</cpf:idTechnique><cpf:obtentionCertification>PAR_SCORING"
    assert data.count(marker.encode()) == 1
    broken = data.replace(marker.encode(), marker.replace("PAR_SCORING", "PAR_HASARD").encode())
    path = _write(broken, tmp_path)
    for xsd in (official_xsd, PROJECT_112):
        with pytest.raises(SchemaValidationError) as caught:
            check_file(path, xsd)
        message = str(caught.value)
        assert f"idTechnique {target}" in message
        assert "obtentionCertification" in message and "enumeration" in message
        assert "PAR_HASARD" not in message  # a value is never quoted
        assert "P049" not in message or target == "P049"


def test_a_pretty_printed_file_broken_in_the_middle_names_the_passage(
    tmp_path: Path, official_xsd: Path
) -> None:
    root = etree.fromstring(fifty())
    etree.indent(root)
    passage = passages(etree.tostring(root))[30]
    target = passage.findtext("cpf:idTechnique", namespaces=NS)
    assert target == "P030"
    data = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    marker = b"<cpf:idTechnique>P030</cpf:idTechnique>"
    head, tail = data.split(marker)
    tail = tail.replace(b"<cpf:sexe>M</cpf:sexe>", b"<cpf:sexe>X</cpf:sexe>", 1)
    with pytest.raises(SchemaValidationError, match="idTechnique P030"):
        check_file(_write(head + marker + tail, tmp_path), official_xsd)


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.999, -1])
def test_a_truncated_file_is_refused(tmp_path: Path, keep: float, official_xsd: Path) -> None:
    data = fifty()
    assert data.endswith(b"</cpf:flux>\n")
    cut = len(data) - 3 if keep == -1 else int(len(data) * keep)  # -1: inside </cpf:flux>
    path = _write(data[:cut], tmp_path)
    for xsd in (official_xsd, PROJECT_112):
        with pytest.raises(SchemaValidationError):
            check_file(path, xsd)


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda d: d.replace(b"Haba", b"H&ba", 1), "EntityRef"),
        (lambda d: d.replace(b"</cpf:sexe>", b"</cpf:sex>", 1), "mismatch"),
        (lambda d: d + b"<cpf:flux/>", "Extra content"),
        (lambda d: b"", "no element found|Document is empty"),
    ],
    ids=["bare-ampersand", "tag-mismatch", "extra-root", "empty"],
)
def test_a_file_that_is_not_well_formed_is_refused(
    tmp_path: Path, edit: Any, fragment: str, official_xsd: Path
) -> None:
    with pytest.raises(SchemaValidationError, match=fragment):
        check_file(_write(edit(fifty()), tmp_path), official_xsd)


def test_an_external_entity_is_never_resolved(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET")
    data = fifty().replace(
        b"<cpf:flux",
        f'<!DOCTYPE cpf:flux [<!ENTITY x SYSTEM "{secret.as_uri()}">]>\n<cpf:flux'.encode(),
        1,
    )
    data = data.replace(b"Haba", b"&x;", 1)
    with pytest.raises(SchemaValidationError) as caught:
        check_file(_write(data, tmp_path), PROJECT_112)
    assert "SECRET" not in str(caught.value)


def test_the_gate_counts_passages(tmp_path: Path, official_xsd: Path) -> None:
    assert check_file(_write(fifty(), tmp_path), official_xsd).passages == 50


BROKEN: dict[str, Any] = {
    "schema: a value outside its enumeration": lambda d: d.replace(
        b"<cpf:sexe>M</cpf:sexe>", b"<cpf:sexe>X</cpf:sexe>", 1
    ),
    "schema: a mandatory element missing": lambda d: re.sub(
        rb"<cpf:idTechnique>P007</cpf:idTechnique>", b"", d, count=1
    ),
    "schema: an element out of order": lambda d: d.replace(
        b"<cpf:dateDebutValidite>", b"<cpf:x/><cpf:dateDebutValidite>", 1
    ),
    "not well formed": lambda d: d.replace(b"</cpf:sexe>", b"</cpf:sex>", 1),
    "truncated": lambda d: d[: len(d) // 2],
    "extra root": lambda d: d + b"<cpf:flux/>",
    "bare ampersand": lambda d: d.replace(b"Haba", b"H&ba", 1),
    "a DTD": lambda d: d.replace(b"<cpf:flux", b"<!DOCTYPE cpf:flux []>\n<cpf:flux", 1),
}


@pytest.mark.parametrize("name", ["valid", *BROKEN])
def test_the_whole_file_check_decides_only_valid_files(
    tmp_path: Path, name: str, official_xsd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small file is validated whole first (`gate.TREE_MAX_BYTES`): the answer, faults
    and their places included, is the streamed check's, and a broken file always gets the
    streamed check's faults (the whole-file check only ever says "valid")."""
    data = fifty() if name == "valid" else BROKEN[name](fifty())
    path = _write(data, tmp_path)
    assert path.stat().st_size <= gate.TREE_MAX_BYTES
    streamed_parse, streams = gate._parse, []

    def counted(*args: Any) -> Any:
        streams.append(1)
        return streamed_parse(*args)

    monkeypatch.setattr(gate, "_parse", counted)
    answers = []
    for limit in (gate.TREE_MAX_BYTES, 0):
        monkeypatch.setattr(gate, "TREE_MAX_BYTES", limit)
        answers.append(gate.inspect_file(path, official_xsd))
    whole, streamed = answers
    assert (whole.passages, whole.faults) == (streamed.passages, streamed.faults)
    assert whole.ok is (name == "valid")
    # Streamed once for the valid file (limit 0 only), twice for a broken one (both limits),
    # never for a DTD (refused from the file's head, before any parser).
    assert len(streams) == {"valid": 1, "a DTD": 0}.get(name, 2)
    if name == "valid":
        assert whole.passages == 50


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SchemaValidationError, match="cannot be read"):
        check_file(tmp_path / "absent.xml", PROJECT_112)


@pytest.mark.parametrize("name", ["flux-full-1.1.2.xml", "flux-pix-1.1.2.xml"])
def test_shared_examples_pass_the_gate(shared_dir: Path, name: str, official_xsd: Path) -> None:
    example = shared_dir / "cdc" / "examples" / name
    result = check_file(example, PROJECT_112)
    assert result.passages == len(
        etree.parse(str(example)).findall(".//cpf:passageCertification", NS)
    )
    assert result.passages > 0
    assert check_file(example, official_xsd).passages == result.passages


# --------------------------------------------------------------------------------------------
# release(): atomic, checked, named
# --------------------------------------------------------------------------------------------

REFUSE_ALL = """<?xml version="1.0" encoding="UTF-8"?>
<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema"
            targetNamespace="urn:cdc:cpf:pc5:schema:1.0.0" elementFormDefault="qualified">
  <xsd:element name="somethingElse" type="xsd:string"/>
</xsd:schema>
"""


def _everything_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_release_leaves_nothing_when_the_gate_fails(tmp_path: Path) -> None:
    xsd = tmp_path / "refuse-all.xsd"
    xsd.write_text(REFUSE_ALL)
    outbox = tmp_path / "outbox"
    with pytest.raises(SchemaValidationError):
        release(outbox, header(), [model(delivered_event())], xsd=xsd)
    assert _everything_under(outbox) == []


def test_release_leaves_nothing_when_rendering_fails(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    with pytest.raises(RenderError):
        release(outbox, header(), [model(delivered_event())], xsd=PROJECT_112, max_bytes=100)
    with pytest.raises(RenderError):
        release(outbox, header(), [], xsd=PROJECT_112)
    assert _everything_under(outbox) == []


def test_release_publishes_one_named_file(tmp_path: Path, official_xsd: Path) -> None:
    outbox = tmp_path / "outbox"
    raws = group_by_code(fixed_events())
    flux = header(id_flux="0b7e6c1a-3f2d-4e5f-8a9b-0c1d2e3f4a5b")
    released = release(outbox, flux, [model(raw) for raw in raws], xsd=official_xsd)
    files = _everything_under(outbox)
    assert files == [released.path]
    assert released.path.parent == outbox / "pix"
    assert (
        released.path.name
        == "03VML243_pix_20260115T110000_0b7e6c1a-3f2d-4e5f-8a9b-0c1d2e3f4a5b.xml"
    )
    assert re.fullmatch(
        r"[A-Za-z0-9]{8}_[a-z0-9_-]+_\d{8}T\d{6}_[A-Za-z0-9_-]+\.xml", released.path.name
    )
    assert file_name(flux) == released.path.name
    content = released.path.read_bytes()
    assert released.sha256 == hashlib.sha256(content).hexdigest()
    assert released.size == len(content)
    assert released.passages == len(raws)
    assert content == render([model(raw) for raw in raws], flux)
    assert_round_trip(content, raws, id_flux=flux.id_flux)


def test_release_names_summer_batches_in_paris_time(tmp_path: Path) -> None:
    released = release(
        tmp_path,
        header(created_at=SUMMER, id_flux="b2"),
        [model(delivered_event())],
        xsd=PROJECT_112,
    )
    assert released.path.name == "03VML243_pix_20260715T120000_b2.xml"


def test_release_makes_an_unsafe_batch_id_ascii(tmp_path: Path) -> None:
    flux = header(id_flux="lot/é 1")
    released = release(tmp_path, flux, [model(delivered_event())], xsd=PROJECT_112)
    assert released.path.parent == tmp_path / "pix"
    assert released.path.name.isascii()
    assert "/" not in released.path.name and " " not in released.path.name
    assert etree.parse(str(released.path)).findtext("cpf:idFlux", namespaces=NS) == "lot/é 1"


@pytest.mark.parametrize(
    ("message", "type_name", "element", "rule"),
    [
        (
            "Element '{urn:x}nomNaissance': [facet 'pattern'] The value \"O'Hara-Z\" is not "
            "accepted by the pattern '[A-Z]+'.",
            "SCHEMAV_CVC_PATTERN_VALID",
            "nomNaissance",
            "[facet 'pattern'] the value does not match the pattern '[A-Z]+'",
        ),
        (
            "Element '{urn:x}nomNaissance': [facet 'maxLength'] The value 'O'Hara-Z' has a "
            "length of '8'; this exceeds the allowed maximum length of '3'.",
            "SCHEMAV_CVC_MAXLENGTH_VALID",
            "nomNaissance",
            "[facet 'maxLength'] the value is longer than the maximum length of 3",
        ),
        (
            "Element '{urn:x}nir': 'O'Hara-Z' is not a valid value of the atomic type "
            "'{urn:x}nir'.",
            "SCHEMAV_CVC_DATATYPE_VALID_1_2_1",
            "nir",
            "the value is not a valid value of the atomic type 'nir'",
        ),
        (
            "Element '{urn:x}dateFinValidite', attribute '{http://w3/xsi}nil': 'O'Hara-Z' "
            "is something new.",
            "SCHEMAV_CVC_SOMETHING_NEW",
            "dateFinValidite/@nil",
            "the value breaks the schema rule SCHEMAV_CVC_SOMETHING_NEW",
        ),
    ],
    ids=["pattern", "max-length", "datatype", "unknown-rule"],
)
def test_xsd_errors_are_reduced_to_element_and_rule(
    message: str, type_name: str, element: str, rule: str
) -> None:
    assert reduce_schema_error(message, type_name) == (element, rule)
