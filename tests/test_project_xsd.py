"""The project's own XSD files against the official CDC schema.

`accrochage/sinks/xsd/cpf-1.1.2.xsd` is written from SPEC.md, not copied from the CDC file, and
must accept exactly what the official 1.1.2 XSD accepts. Each mutation of a real example below
states the expected decision; both schemas must reach it, so a mutation that silently changes
nothing, or a schema that drifts, fails the test.

`cpf-1.1.5.xsd` is reconstructed from SPEC §3.1 (no official file): it must behave as the 1.1.2
model plus a required `action` and a third identification branch `identifiantNational`.
"""

from __future__ import annotations

from collections.abc import Callable
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path

import pytest
from lxml import etree

NS = "urn:cdc:cpf:pc5:schema:1.0.0"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XSI_NIL = f"{{{XSI}}}nil"
XSI_TYPE = f"{{{XSI}}}type"
PROJECT_XSD_DIR = Path(__file__).resolve().parent.parent / "accrochage" / "sinks" / "xsd"

FULL = "flux-full-1.1.2.xml"
PIX = "flux-pix-1.1.2.xml"

Edit = Callable[[etree._Element], None]


def q(name: str) -> str:
    return f"{{{NS}}}{name}"


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def examples_dir(shared_dir: Path) -> Path:
    return shared_dir / "cdc" / "examples"


@pytest.fixture(scope="session")
def official_schema(official_xsd: Path) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(official_xsd)))


@pytest.fixture(scope="session")
def project_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(PROJECT_XSD_DIR / "cpf-1.1.2.xsd")))


@pytest.fixture(scope="session")
def project_schema_115() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(PROJECT_XSD_DIR / "cpf-1.1.5.xsd")))


def _load(examples_dir: Path, name: str) -> etree._ElementTree:
    return etree.parse(str(examples_dir / name))


def _decide(schema: etree.XMLSchema, doc: etree._ElementTree) -> tuple[bool, str]:
    valid = schema.validate(doc)
    return valid, "" if valid else str(schema.error_log)


# --------------------------------------------------------------------------------------------
# Edit helpers: each returns a function that mutates the root element in place. They raise
# when the targeted element is missing, so a mutation can never be a silent no-op.
# --------------------------------------------------------------------------------------------


def _find(root: etree._Element, name: str, index: int = 0) -> etree._Element:
    found = list(root.iter(q(name)))
    if len(found) <= index:
        raise LookupError(f"no cpf:{name} #{index} in the base document")
    return found[index]


def set_text(name: str, value: str, index: int = 0) -> Edit:
    def edit(root: etree._Element) -> None:
        el = _find(root, name, index)
        if XSI_NIL in el.attrib:
            del el.attrib[XSI_NIL]
        el.text = value

    return edit


def remove(name: str, index: int = 0) -> Edit:
    def edit(root: etree._Element) -> None:
        el = _find(root, name, index)
        parent = el.getparent()
        assert parent is not None
        parent.remove(el)

    return edit


def remove_all(name: str) -> Edit:
    def edit(root: etree._Element) -> None:
        found = list(root.iter(q(name)))
        if not found:
            raise LookupError(f"no cpf:{name} in the base document")
        for el in found:
            parent = el.getparent()
            assert parent is not None
            parent.remove(el)

    return edit


def duplicate(name: str, index: int = 0) -> Edit:
    def edit(root: etree._Element) -> None:
        el = _find(root, name, index)
        el.addnext(deepcopy(el))

    return edit


def nil(name: str, index: int = 0, value: str = "true", text: str | None = None) -> Edit:
    def edit(root: etree._Element) -> None:
        el = _find(root, name, index)
        for child in list(el):
            el.remove(child)
        el.set(XSI_NIL, value)
        el.text = text

    return edit


def add(parent: str, name: str, value: str | None, index: int = 0) -> Edit:
    def edit(root: etree._Element) -> None:
        child = etree.SubElement(_find(root, parent, index), q(name))
        child.text = value

    return edit


def set_attr(name: str, attr: str, value: str, index: int = 0) -> Edit:
    def edit(root: etree._Element) -> None:
        _find(root, name, index).set(attr, value)

    return edit


def rename(name: str, new_tag: str, index: int = 0) -> Edit:
    def edit(root: etree._Element) -> None:
        _find(root, name, index).tag = new_tag

    return edit


def reverse_children(name: str, index: int = 0) -> Edit:
    def edit(root: etree._Element) -> None:
        el = _find(root, name, index)
        children = list(el)
        for child in children:
            el.remove(child)
        for child in reversed(children):
            el.append(child)

    return edit


def chain(*edits: Edit) -> Edit:
    def edit(root: etree._Element) -> None:
        for one in edits:
            one(root)

    return edit


def use_postal_code(value: str | None, keep_insee: bool = False) -> Edit:
    """Replace (or, with keep_insee, complete) the INSEE branch of codeCommuneNaissance."""

    def edit(root: etree._Element) -> None:
        commune = _find(root, "codeCommuneNaissance")
        if not keep_insee:
            commune.remove(_find(commune, "codeInseeNaissance"))
        postal = etree.SubElement(
            etree.SubElement(commune, q("codePostalNaissance")), q("codePostal")
        )
        if value is None:
            postal.set(XSI_NIL, "true")
        else:
            postal.text = value

    return edit


def both_identification_branches(root: etree._Element) -> None:
    # flux-full: passage 1 identifies a titulaire, passage 2 a dossierFormation.
    _find(root, "identificationTitulaire", 0).append(deepcopy(_find(root, "dossierFormation")))


def strip_namespace(root: etree._Element) -> None:
    for el in root.iter(etree.Element):
        el.tag = etree.QName(el).localname


def add_comment_and_pi(root: etree._Element) -> None:
    titulaire = _find(root, "titulaire")
    titulaire.insert(0, etree.Comment(" a comment "))
    titulaire.insert(1, etree.ProcessingInstruction("app", "data"))


def second_certificateur(root: etree._Element) -> None:
    certificateur = _find(root, "certificateur")
    copy = deepcopy(certificateur)
    _find(copy, "idClient").text = "ZZ999ZZZ"
    certificateur.addnext(copy)


def insert_action(root: etree._Element, value: str = "CREATION") -> None:
    action = etree.Element(q("action"))
    action.text = value
    root.insert(2, action)


# --------------------------------------------------------------------------------------------
# The mutations
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    edit: Edit
    valid: bool
    base: str = FULL


def _len_cases(name: str, ok: int, ko: int, index: int = 0, base: str = FULL) -> list[Case]:
    return [
        Case(f"{name}-{ok}-chars", set_text(name, "x" * ok, index), True, base),
        Case(f"{name}-{ko}-chars", set_text(name, "x" * ko, index), False, base),
    ]


# Enumerations of SPEC §6, by element name.
ENUMS: dict[str, tuple[str, ...]] = {
    "natureDeposant": ("CERTIFICATEUR", "TIERS_CONFIANCE"),
    "obtentionCertification": ("PAR_ADMISSION", "PAR_SCORING"),
    "modalitePassageExamen": ("A_DISTANCE", "EN_PRESENTIEL", "MIXTE"),
    "niveauLangueEuropeen": ("A1", "A2", "B1", "B2", "C1", "C2", "INSUFFISANT"),
    "mentionValidee": (
        "SANS_MENTION",
        "MENTION_ASSEZ_BIEN",
        "MENTION_BIEN",
        "MENTION_TRES_BIEN",
        "MENTION_TRES_BIEN_AVEC_FELICITATIONS_DU_JURY",
    ),
    "modaliteAcces": (
        "FORMATION_INITIALE_HORS_APPRENTISSAGE",
        "FORMATION_INITIALE_APPRENTISSAGE",
        "FORMATION_CONTINUE_HORS_CONTRAT_DE_PROFESSIONNALISATION",
        "FORMATION_CONTINUE_CONTRAT_DE_PROFESSIONNALISATION",
        "VAE",
        "EQUIVALENCE_DIPLOME_ETRANGER",
        "CANDIDAT_LIBRE",
    ),
    "voieAccessVAE": ("CONGES_VAE", "VAE_CLASSIQUE"),
    "initiativeInscription": ("CERTIFIE", "OF", "POLE_EMPLOI", "EMPLOYEUR", "AUTRE"),
    "sexe": ("M", "F"),
}


def _enum_cases() -> list[Case]:
    cases: list[Case] = []
    for name, values in ENUMS.items():
        cases += [Case(f"{name}={value}", set_text(name, value), True) for value in values]
        cases.append(Case(f"{name}-bad-value", set_text(name, "NOT_IN_ENUM"), False))
        cases.append(Case(f"{name}-lowercase", set_text(name, values[0].lower()), False))
        cases.append(Case(f"{name}-empty", set_text(name, ""), False))
    return cases


def _int_cases() -> list[Case]:
    ranges = {
        "anneeNaissance": (["1900", "2099", "1996"], ["1899", "2100", "96"]),
        "moisNaissance": (["1", "12", "05", "+05", " 12 "], ["0", "13", "-1", "1.0", "mai"]),
        "jourNaissance": (["1", "31", "01"], ["0", "32", ""]),
        "niveau": (["1", "8"], ["0", "9"]),
        "scoreGeneral": (["1", "1000"], ["0", "1001", "2147483648", "12.5"]),
    }
    cases: list[Case] = []
    for name, (good, bad) in ranges.items():
        cases += [Case(f"{name}={v!r}", set_text(name, v), True) for v in good]
        cases += [Case(f"{name}={v!r}", set_text(name, v), False) for v in bad]
    return cases


HORODATAGES = {
    "2020-12-18T14:24:12+01:00": True,
    "2020-12-18T14:24:12-05:30": True,
    "2020-12-18T14:24:12+00:00": True,
    "2020-12-18T14:24:12+14:00": True,
    "2020-12-18T14:24:12Z": False,
    "2020-12-18T14:24:12.5+01:00": False,
    "2020-12-18T14:24:12": False,
    "2020-12-18T14:24+01:00": False,
    "2020-12-18 14:24:12+01:00": False,
    "1899-12-31T23:59:59+01:00": False,
    "2100-01-01T00:00:00+01:00": False,
    "2020-12-18T24:00:00+01:00": False,
    "2020-02-30T10:00:00+01:00": False,
    "2020-12-18T14:24:12+15:00": False,
    "2020-12-18T14:24:12+20:00": False,
    # The quirk (:2[0-3]|[01][0-9]) lets this through the pattern; xsd:dateTime refuses it.
    "2020-12-18T14:24:12+:21:00": False,
    "2020-12-18T14:24:12+1:00": False,
}

DATES = {
    "2020-12-12": True,
    "1900-01-01": True,
    "2099-12-31": True,
    "2020-02-29": True,
    "1899-12-31": False,
    "2100-01-01": False,
    "2021-02-29": False,
    "2020-12-12Z": False,
    "2020-12-12+01:00": False,
    "20201212": False,
    "2020-1-12": False,
    "12/12/2020": False,
}


CASES: list[Case] = [
    Case("unchanged-full", lambda root: None, True),
    Case("unchanged-pix", lambda root: None, True, PIX),
    # Length boundaries (SPEC §5).
    *_len_cases("idFlux", 50, 51),
    Case("idFlux-empty", set_text("idFlux", ""), False),
    *_len_cases("idContrat", 20, 21),
    Case("idContrat-empty", set_text("idContrat", ""), False),
    Case("emetteur-idClient-7-chars", set_text("idClient", "x" * 7, 0), False),
    Case("emetteur-idClient-9-chars", set_text("idClient", "x" * 9, 0), False),
    Case("certificateur-idClient-7-chars", set_text("idClient", "x" * 7, 1), False),
    Case("certificateur-idClient-9-chars", set_text("idClient", "x" * 9, 1), False),
    *_len_cases("type", 255, 256),
    Case("type-empty", set_text("type", ""), False),
    Case("type-free-text", set_text("type", "NOT_AN_ENUM"), True),
    *_len_cases("code", 100, 101),
    *_len_cases("idTechnique", 255, 256),
    *_len_cases("urlPreuve", 255, 256),
    *_len_cases("libelleOption", 255, 256),
    *_len_cases("codePostalCentreExamen", 9, 10),
    *_len_cases("scoring", 255, 256),
    Case("scoring-empty", set_text("scoring", ""), False),
    *_len_cases("verbatim", 255, 256),
    *_len_cases("nomNaissance", 60, 61),
    Case("nomNaissance-empty", set_text("nomNaissance", ""), False),
    Case("nomNaissance-single-space", set_text("nomNaissance", " "), True),
    Case("nomNaissance-60-accented", set_text("nomNaissance", "é" * 60), True),
    Case("nomNaissance-61-accented", set_text("nomNaissance", "é" * 61), False),
    *_len_cases("nomUsage", 60, 61),
    *_len_cases("prenom1", 60, 61),
    *_len_cases("prenom2", 60, 61),
    *_len_cases("prenom3", 60, 61),
    *_len_cases("libelleCommuneNaissance", 60, 61),
    *_len_cases("libellePaysNaissance", 60, 61),
    Case("codeInsee-4-chars", set_text("codeInsee", "7511"), False),
    Case("codeInsee-5-chars", set_text("codeInsee", "99109"), True),
    Case("codeInsee-6-chars", set_text("codeInsee", "751150"), False),
    Case("codePaysNaissance-2-chars", add("titulaire", "codePaysNaissance", "10"), False),
    Case("codePaysNaissance-3-chars", add("titulaire", "codePaysNaissance", "109"), True),
    Case("codePaysNaissance-4-chars", add("titulaire", "codePaysNaissance", "1090"), False),
    Case("commentairesMEN-250-chars", add("titulaire", "commentairesMEN", "x" * 250), True),
    Case("commentairesMEN-251-chars", add("titulaire", "commentairesMEN", "x" * 251), False),
    Case("commentairesMEN-empty", add("titulaire", "commentairesMEN", ""), False),
    *_len_cases("idDossier", 13, 14),
    *_len_cases("nomTitulaire", 30, 31),
    *_len_cases("prenom1Titulaire", 20, 21),
    Case("domaineCompetenceId-2-chars", set_text("domaineCompetenceId", "12"), False),
    Case("competenceId-2-chars", set_text("competenceId", "12"), False),
    Case("competenceId-empty", set_text("competenceId", ""), False),
    Case("codePostal-9-chars", use_postal_code("x" * 9), True),
    Case("codePostal-10-chars", use_postal_code("x" * 10), False),
    # Enumerations and int ranges (SPEC §5, §6).
    *_enum_cases(),
    *_int_cases(),
    Case("donneeCertifiee=1", set_text("donneeCertifiee", "1"), True),
    Case("donneeCertifiee=yes", set_text("donneeCertifiee", "yes"), False),
    Case("presenceNiveauLangueEuro=TRUE", set_text("presenceNiveauLangueEuro", "TRUE"), False),
    # horodatage and dates (SPEC §5.1, §5.3).
    *[Case(f"horodatage={h}", set_text("horodatage", h), ok) for h, ok in HORODATAGES.items()],
    *[
        Case(f"dateDebutValidite={d}", set_text("dateDebutValidite", d), ok)
        for d, ok in DATES.items()
    ],
    Case("dateInscription-bad", set_text("dateInscription", "2019-13-10"), False),
    Case("dateFinExamen-with-Z", set_text("dateFinExamen", "2020-12-22Z"), False),
    # Nillable and non-nillable elements.
    Case("nil-dateFinValidite", nil("dateFinValidite", 1), True),
    Case("nil-scoring", nil("scoring"), True),
    Case("nil-mentionValidee", nil("mentionValidee"), True),
    Case("nil-modaliteAcces", nil("modaliteAcces"), True),
    Case("nil-nomUsage", nil("nomUsage"), True),
    Case("nil-moisNaissance", nil("moisNaissance"), True),
    Case("nil-jourNaissance", nil("jourNaissance"), True),
    Case("nil-codePostal", use_postal_code(None), True),
    Case("nil-false-with-value", nil("scoring", value="false", text="12"), True),
    Case("nil-with-content", nil("dateFinValidite", 1, text="2030-12-13"), False),
    Case("nil-empty-without-nil-attr", set_text("dateFinValidite", "", 0), False),
    Case("nil-idFlux", nil("idFlux"), False),
    Case("nil-nomNaissance", nil("nomNaissance"), False),
    Case("nil-anneeNaissance", nil("anneeNaissance"), False),
    Case("nil-dateDebutValidite", nil("dateDebutValidite"), False),
    Case("nil-codeInsee", nil("codeInsee"), False),
    Case("nil-voieAccessVAE", nil("voieAccessVAE"), False),
    Case("nil-identificationTitulaire", nil("identificationTitulaire"), False),
    Case("nil-bad-value", nil("scoring", value="maybe"), False),
    # Missing mandatory elements.
    *[
        Case(f"missing-{name}", remove(name), False)
        for name in (
            "idFlux",
            "horodatage",
            "emetteur",
            "certificateurs",
            "certifications",
            "idContrat",
            "type",
            "code",
            "passageCertifications",
            "idTechnique",
            "obtentionCertification",
            "donneeCertifiee",
            "dateDebutValidite",
            "dateFinValidite",
            "presenceNiveauLangueEuro",
            "presenceNiveauNumeriqueEuro",
            "scoring",
            "mentionValidee",
            "modalitesInscription",
            "modaliteAcces",
            "identificationTitulaire",
            "nomNaissance",
            "nomUsage",
            "prenom1",
            "anneeNaissance",
            "moisNaissance",
            "jourNaissance",
            "sexe",
            "codeCommuneNaissance",
            "codeInsee",
            "idDossier",
            "nomTitulaire",
            "prenom1Titulaire",
        )
    ],
    Case("missing-emetteur-idClient", remove("idClient", 0), False),
    Case("missing-certificateur-idClient", remove("idClient", 1), False),
    Case("missing-certificateur", remove("certificateur"), False),
    Case("empty-certifications", remove_all("certification"), False),
    Case("empty-passageCertifications", remove_all("passageCertification"), False),
    Case("empty-identificationTitulaire", remove("titulaire"), False),
    Case("empty-codeCommuneNaissance", remove("codeInseeNaissance"), False),
    # Missing optional elements.
    *[
        Case(f"optional-{name}", remove(name), True)
        for name in (
            "natureDeposant",
            "urlPreuve",
            "libelleOption",
            "dateDebutExamen",
            "dateFinExamen",
            "modalitePassageExamen",
            "codePostalCentreExamen",
            "niveauLangueEuropeen",
            "niveauNumeriqueEuropeen",
            "scoreGeneral",
            "resultats",
            "verbatim",
            "voieAccessVAE",
            "initiativeInscription",
            "dateInscription",
            "prenom2",
            "prenom3",
            "libelleCommuneNaissance",
            "libellePaysNaissance",
            "niveau",
            "domaineCompetenceId",
            "competenceId",
        )
    ],
    Case("empty-resultats", remove_all("resultat"), True),
    Case(
        "empty-resultat",
        chain(remove("niveau"), remove("domaineCompetenceId"), remove("competenceId")),
        True,
    ),
    Case("empty-niveauNumeriqueEuropeen", chain(remove("scoreGeneral"), remove("resultats")), True),
    # Duplicates and cardinalities.
    *[
        Case(f"duplicated-{name}", duplicate(name), False)
        for name in (
            "idFlux",
            "horodatage",
            "idContrat",
            "certifications",
            "type",
            "natureDeposant",
            "scoring",
            "mentionValidee",
            "dateFinValidite",
            "modaliteAcces",
            "voieAccessVAE",
            "nomNaissance",
            "moisNaissance",
            "codeInsee",
            "codeInseeNaissance",
            "idDossier",
            "scoreGeneral",
            "niveau",
        )
    ],
    Case("two-certificateur", second_certificateur, False),
    Case("two-certification", duplicate("certification"), True),
    Case("two-passageCertification-same-id", duplicate("passageCertification"), True),
    Case("many-resultat", chain(duplicate("resultat"), duplicate("resultat")), True),
    Case("both-identification-branches", both_identification_branches, False),
    Case("both-insee-and-postal", use_postal_code("31000", keep_insee=True), False),
    Case("postal-instead-of-insee", use_postal_code("31000"), True),
    Case("both-insee-and-postal-nil", use_postal_code(None, keep_insee=True), False),
    # Order is free under xsd:all, fixed nowhere else that matters.
    Case("reversed-flux-children", reverse_children("flux"), True),
    Case("reversed-passage-children", reverse_children("passageCertification"), True),
    Case("reversed-titulaire-children", reverse_children("titulaire"), True),
    Case("reversed-modalitesInscription", reverse_children("modalitesInscription"), True),
    # Namespaces, unknown content, attributes.
    Case("element-in-no-namespace", rename("verbatim", "verbatim"), False),
    Case("idFlux-in-no-namespace", rename("idFlux", "idFlux"), False),
    Case("document-in-no-namespace", strip_namespace, False),
    Case("element-in-other-namespace", rename("verbatim", "{urn:other}verbatim"), False),
    Case("unknown-cpf-element", add("titulaire", "prenom4", "Paul"), False),
    Case("action-is-not-1.1.2", insert_action, False),
    Case("identifiantNational-is-not-1.1.2", rename("titulaire", q("identifiantNational")), False),
    Case("unknown-attribute", set_attr("idFlux", "version", "2"), False),
    Case("foreign-namespace-attribute", set_attr("flux", "{urn:other}a", "b"), False),
    Case("xsi-type-official-type-name", set_attr("sexe", XSI_TYPE, "cpf:genre"), True),
    Case("xsi-type-builtin-string", set_attr("sexe", XSI_TYPE, "xsd:string"), False),
    Case("text-in-element-only-content", set_text("emetteur", "stray text"), False),
    Case("comment-and-pi", add_comment_and_pi, True),
    Case("wrong-root", lambda root: setattr(root, "tag", q("emetteur")), False),
    # A few on the Pix example (nil nomUsage / modaliteAcces, no dossierFormation).
    Case("pix-nomUsage-set", set_text("nomUsage", "Martin"), True, PIX),
    Case("pix-modaliteAcces-set", set_text("modaliteAcces", "VAE"), True, PIX),
    Case("pix-modaliteAcces-bad", set_text("modaliteAcces", "VAE_CLASSIQUE"), False, PIX),
    Case("pix-missing-mentionValidee", remove("mentionValidee"), False, PIX),
    Case("pix-nomNaissance-61", set_text("nomNaissance", "D" * 61), False, PIX),
]

_ids = [case.id for case in CASES]
assert len(_ids) == len(set(_ids)), "duplicate case ids"


def _mutated(examples_dir: Path, case: Case) -> etree._ElementTree:
    doc = _load(examples_dir, case.base)
    root = doc.getroot()
    case.edit(root)
    if any(XSI_TYPE in el.attrib for el in root.iter(etree.Element)):
        # Re-parse with the xsd prefix bound, so that xsi:type="xsd:string" resolves.
        text = etree.tostring(doc).decode()
        text = text.replace(
            f'xmlns:cpf="{NS}"', f'xmlns:cpf="{NS}" xmlns:xsd="http://www.w3.org/2001/XMLSchema"', 1
        )
        doc = etree.ElementTree(etree.fromstring(text))
    return doc


# --------------------------------------------------------------------------------------------
# Tests: 1.1.2
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("example", [FULL, PIX])
def test_examples_validate_against_both_schemas(
    examples_dir: Path,
    example: str,
    official_schema: etree.XMLSchema,
    project_schema: etree.XMLSchema,
) -> None:
    doc = _load(examples_dir, example)
    assert _decide(official_schema, doc) == (True, "")
    assert _decide(project_schema, doc) == (True, "")


def test_there_are_enough_mutations() -> None:
    assert len(CASES) >= 25
    assert any(case.valid for case in CASES)
    assert any(not case.valid for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_project_xsd_decides_like_official(
    examples_dir: Path,
    case: Case,
    official_schema: etree.XMLSchema,
    project_schema: etree.XMLSchema,
) -> None:
    doc = _mutated(examples_dir, case)
    official_valid, official_error = _decide(official_schema, doc)
    project_valid, project_error = _decide(project_schema, doc)
    assert official_valid is case.valid, f"official XSD: {official_error or 'valid'}"
    assert project_valid is official_valid, f"project XSD: {project_error or 'valid'}"


def test_project_112_declares_the_official_namespace_and_version(
    official_xsd: Path,
) -> None:
    ours = etree.parse(str(PROJECT_XSD_DIR / "cpf-1.1.2.xsd")).getroot()
    theirs = etree.parse(str(official_xsd)).getroot()
    for attr in ("targetNamespace", "elementFormDefault", "version"):
        assert ours.get(attr) == theirs.get(attr), attr


def test_known_divergence_xsi_type_naming_a_project_only_type(
    examples_dir: Path,
    official_schema: etree.XMLSchema,
    project_schema: etree.XMLSchema,
) -> None:
    """The one difference by construction: the project names simple types (cpf:text60, ...)
    that the official file leaves anonymous, so an xsi:type naming one resolves only here.
    No renderer of ours emits xsi:type; this test pins the difference so it stays known."""
    doc = _load(examples_dir, FULL)
    _find(doc.getroot(), "nomNaissance").set(XSI_TYPE, "cpf:text60")
    assert _decide(official_schema, doc)[0] is False
    assert _decide(project_schema, doc)[0] is True


# --------------------------------------------------------------------------------------------
# Tests: 1.1.5 (reconstructed from SPEC §3.1)
# --------------------------------------------------------------------------------------------

NIR = "1850578006048"


def _national_branch(nir: str | None = NIR, nom: str | None = "Dupont") -> Edit:
    """Replace the first titulaire by an identifiantNational branch."""

    def edit(root: etree._Element) -> None:
        titulaire = _find(root, "titulaire")
        branch = etree.Element(q("identifiantNational"))
        if nir is not None:
            etree.SubElement(branch, q("nir")).text = nir
        if nom is not None:
            etree.SubElement(branch, q("nomNaissance")).text = nom
        titulaire.getparent().replace(titulaire, branch)  # type: ignore[union-attr]

    return edit


def _doc_115(
    examples_dir: Path, *edits: Edit, action: str | None = "CREATION"
) -> etree._ElementTree:
    doc = _load(examples_dir, FULL)
    root = doc.getroot()
    if action is not None:
        insert_action(root, action)
    for edit in edits:
        edit(root)
    return doc


CASES_115: list[tuple[str, Edit, str | None, bool]] = [
    ("creation-with-identifiantNational", _national_branch(), "CREATION", True),
    ("suppression-with-identifiantNational", _national_branch(), "SUPPRESSION", True),
    ("creation-1.1.2-branches-only", lambda root: None, "CREATION", True),
    ("nir-corsica-2A", _national_branch(nir="185052A123456"), "CREATION", True),
    ("nir-corsica-2B-sex-2", _national_branch(nir="285052B123456"), "CREATION", True),
    ("nomNaissance-60", _national_branch(nom="x" * 60), "CREATION", True),
    ("action-moved-last", reverse_children("flux"), "CREATION", True),
    ("no-action", _national_branch(), None, False),
    ("action-bad-value", _national_branch(), "MODIFICATION", False),
    ("action-lowercase", _national_branch(), "creation", False),
    ("action-duplicated", duplicate("action"), "CREATION", False),
    ("action-nil", nil("action"), "CREATION", False),
    ("nir-15-chars-with-key", _national_branch(nir="185057800604812"), "CREATION", False),
    ("nir-14-chars", _national_branch(nir="18505780060481"), "CREATION", False),
    ("nir-12-chars", _national_branch(nir="185057800604"), "CREATION", False),
    ("nir-sex-3", _national_branch(nir="3850578006048"), "CREATION", False),
    ("nir-sex-0", _national_branch(nir="0850578006048"), "CREATION", False),
    ("nir-corsica-lowercase", _national_branch(nir="185052a123456"), "CREATION", False),
    ("nir-corsica-2C", _national_branch(nir="185052C123456"), "CREATION", False),
    ("nir-letter-in-tail", _national_branch(nir="18505780060A8"), "CREATION", False),
    ("nir-spaces", _national_branch(nir="1 85 05 78 006 048"), "CREATION", False),
    ("nir-missing", _national_branch(nir=None), "CREATION", False),
    ("nomNaissance-missing", _national_branch(nom=None), "CREATION", False),
    ("nomNaissance-61", _national_branch(nom="x" * 61), "CREATION", False),
    ("nomNaissance-empty", _national_branch(nom=""), "CREATION", False),
    (
        "identifiantNational-plus-dossierFormation",
        chain(_national_branch(), both_identification_branches),
        "CREATION",
        False,
    ),
    (
        "identifiantNational-with-prenom1",
        chain(_national_branch(), add("identifiantNational", "prenom1", "Antoine")),
        "CREATION",
        False,
    ),
]


@pytest.mark.parametrize(
    ("edit", "action", "valid"),
    [case[1:] for case in CASES_115],
    ids=[case[0] for case in CASES_115],
)
def test_project_115(
    examples_dir: Path,
    edit: Edit,
    action: str | None,
    valid: bool,
    project_schema_115: etree.XMLSchema,
) -> None:
    doc = _doc_115(examples_dir, edit, action=action)
    assert _decide(project_schema_115, doc)[0] is valid, project_schema_115.error_log


@pytest.mark.parametrize("example", [FULL, PIX])
def test_115_refuses_the_112_examples_without_action(
    examples_dir: Path, example: str, project_schema_115: etree.XMLSchema
) -> None:
    assert _decide(project_schema_115, _load(examples_dir, example))[0] is False


def test_112_schemas_refuse_a_115_document(
    examples_dir: Path,
    official_schema: etree.XMLSchema,
    project_schema: etree.XMLSchema,
    project_schema_115: etree.XMLSchema,
) -> None:
    doc = _doc_115(examples_dir, _national_branch())
    assert _decide(project_schema_115, doc)[0] is True
    assert _decide(official_schema, doc)[0] is False
    assert _decide(project_schema, doc)[0] is False


# Mutations whose 1.1.2 verdict is about `action` or `identifiantNational` themselves.
NOT_APPLICABLE_TO_115 = {"action-is-not-1.1.2", "identifiantNational-is-not-1.1.2"}


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.id not in NOT_APPLICABLE_TO_115], ids=lambda c: c.id
)
def test_115_keeps_the_112_model(
    examples_dir: Path,
    case: Case,
    official_schema: etree.XMLSchema,
    project_schema_115: etree.XMLSchema,
) -> None:
    """Every 1.1.2 mutation, plus `<cpf:action>CREATION</cpf:action>`, gets the official
    1.1.2 verdict from the 1.1.5 schema."""
    doc = _mutated(examples_dir, case)
    official_valid = _decide(official_schema, doc)[0]
    assert official_valid is case.valid
    root = doc.getroot()
    insert_action(root)
    assert _decide(project_schema_115, doc)[0] is official_valid, project_schema_115.error_log
