"""One valid event -> one CDC `passageCertification` element (lxml), XSD declaration order."""

from __future__ import annotations

from datetime import date

from lxml import etree

from accrochage.models.event import DeliveredEvent, Holder
from accrochage.sinks.profiles import NAMESPACE, XSI, SchemaProfile

NSMAP = {"cpf": NAMESPACE, "xsi": XSI}
_NIL = f"{{{XSI}}}nil"
_Element = etree._Element


def q(name: str) -> str:
    return f"{{{NAMESPACE}}}{name}"


def element(name: str, value: str) -> _Element:
    """A standalone leaf carrying the flux namespace map (see `fragment`)."""
    node = etree.Element(q(name), nsmap=NSMAP)
    node.text = value
    return node


def leaf(parent: _Element, name: str, value: str | None) -> None:
    """A child element with text, omitted when the value is absent (minOccurs=0)."""
    if value is not None:
        etree.SubElement(parent, q(name)).text = value


def nillable(parent: _Element, name: str, value: str | None) -> None:
    """A mandatory element that is `xsi:nil="true"` when the value is absent."""
    child = etree.SubElement(parent, q(name))
    if value is None:
        child.set(_NIL, "true")
    else:
        child.text = value


def _day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _int(value: int | None) -> str | None:
    return str(value) if value is not None else None


def born_abroad_country(insee_code: str | None) -> str | None:
    """INSEE `99xxx` is a foreign country; its last three digits are `codePaysNaissance`."""
    if insee_code is not None and insee_code.startswith("99"):
        return insee_code[2:]
    return None


def _titulaire(parent: _Element, holder: Holder) -> None:
    node = etree.SubElement(parent, q("titulaire"))
    leaf(node, "nomNaissance", holder.birth_name)
    nillable(node, "nomUsage", holder.usage_name)
    for position, first_name in enumerate(holder.first_names, start=1):
        leaf(node, f"prenom{position}", first_name)
    leaf(node, "anneeNaissance", str(holder.birth_date.year))
    nillable(node, "moisNaissance", _int(holder.birth_date.month))
    nillable(node, "jourNaissance", _int(holder.birth_date.day))
    leaf(node, "sexe", holder.sex)
    place = holder.birth_place
    commune = etree.SubElement(node, q("codeCommuneNaissance"))
    if place is not None and place.insee_code is not None:
        insee = etree.SubElement(commune, q("codeInseeNaissance"))
        leaf(insee, "codeInsee", place.insee_code)
    else:
        postal = etree.SubElement(commune, q("codePostalNaissance"))
        nillable(postal, "codePostal", place.postal_code if place else None)
    if place is not None:
        leaf(node, "libelleCommuneNaissance", place.city)
        leaf(node, "codePaysNaissance", place.country_code or born_abroad_country(place.insee_code))
        leaf(node, "libellePaysNaissance", place.country)


def exports_national_id(holder: Holder | None, profile: SchemaProfile) -> bool:
    return (
        profile.national_id
        and holder is not None
        and holder.nir is not None
        and holder.nir[0] in "12"
    )


def _identification(parent: _Element, event: DeliveredEvent, profile: SchemaProfile) -> None:
    node = etree.SubElement(parent, q("identificationTitulaire"))
    holder = event.holder
    if holder is not None and exports_national_id(holder, profile):
        national = etree.SubElement(node, q("identifiantNational"))
        leaf(national, "nir", (holder.nir or "")[:13])
        leaf(national, "nomNaissance", holder.birth_name)
    elif holder is not None:
        _titulaire(node, holder)
    elif event.cpf_file is not None:
        dossier = etree.SubElement(node, q("dossierFormation"))
        leaf(dossier, "idDossier", event.cpf_file.id)
        leaf(dossier, "nomTitulaire", event.cpf_file.holder_name)
        leaf(dossier, "prenom1Titulaire", event.cpf_file.holder_first_name)


def _digital(parent: _Element, event: DeliveredEvent) -> None:
    level = event.digital_level
    leaf(parent, "presenceNiveauNumeriqueEuro", "true" if level is not None else "false")
    if level is None:
        return
    node = etree.SubElement(parent, q("niveauNumeriqueEuropeen"))
    leaf(node, "scoreGeneral", _int(level.general_score))
    if level.results:
        results = etree.SubElement(node, q("resultats"))
        for result in level.results:
            item = etree.SubElement(results, q("resultat"))
            leaf(item, "niveau", _int(result.level))
            leaf(item, "domaineCompetenceId", result.area)
            leaf(item, "competenceId", result.competence)


def passage_element(event: DeliveredEvent, profile: SchemaProfile) -> _Element:
    root = etree.Element(q("passageCertification"), nsmap=NSMAP)
    leaf(root, "idTechnique", event.record_id)
    leaf(root, "urlPreuve", event.proof_url)
    leaf(root, "libelleOption", event.option_label)
    leaf(root, "obtentionCertification", event.obtention)
    leaf(root, "donneeCertifiee", "true" if event.certified else "false")
    exam = event.exam
    if exam is not None:
        leaf(root, "dateDebutExamen", _day(exam.start))
        leaf(root, "dateFinExamen", _day(exam.end))
        leaf(root, "modalitePassageExamen", exam.mode)
        leaf(root, "codePostalCentreExamen", exam.center_postal_code)
    leaf(root, "dateDebutValidite", event.delivered_on.isoformat())
    nillable(root, "dateFinValidite", _day(event.valid_until))
    leaf(root, "presenceNiveauLangueEuro", "true" if event.language_level else "false")
    leaf(root, "niveauLangueEuropeen", event.language_level)
    _digital(root, event)
    nillable(root, "scoring", event.score)
    nillable(root, "mentionValidee", event.mention)
    registration = event.registration
    modalities = etree.SubElement(root, q("modalitesInscription"))
    nillable(modalities, "modaliteAcces", registration.access_mode if registration else None)
    if registration is not None:
        leaf(modalities, "voieAccessVAE", registration.vae_path)
        leaf(modalities, "initiativeInscription", registration.initiative)
        leaf(modalities, "dateInscription", _day(registration.date))
    _identification(root, event, profile)
    leaf(root, "verbatim", event.verbatim)
    return root


NS_DECLARATIONS = etree.tostring(etree.Element(q("x"), nsmap=NSMAP))[len(b"<cpf:x") : -2]


def fragment(element: _Element) -> bytes:
    """The element's bytes inside a flux whose root declares the namespaces.

    Serialised alone, lxml declares `cpf` and `xsi` on the element; the root already does,
    so the declaration is dropped instead of being repeated on every passage.
    """
    data = etree.tostring(element, encoding="UTF-8")
    if NS_DECLARATIONS not in data[: data.find(b">") + 1]:
        raise AssertionError("fragment built without the flux namespace map")
    return data.replace(NS_DECLARATIONS, b"", 1)


def passage_bytes(event: DeliveredEvent, profile: SchemaProfile) -> bytes:
    return fragment(passage_element(event, profile)) + b"\n"


PASSAGE_TAGS_BOUND = 3_000
RESULT_TAGS_BOUND = 200
MAX_RESULTS = 64


def passage_size_bound(content: str) -> int:
    """An upper bound of a passage's bytes in a file, from its content JSON, without rendering.

    Every value is copied from the content, and XML escaping at most quintuples a character's
    UTF-8 bytes (`&` -> `&amp;`); the tags are bounded by the element names, at most
    `MAX_RESULTS` digital results included.
    """
    return PASSAGE_TAGS_BOUND + RESULT_TAGS_BOUND * MAX_RESULTS + 5 * len(content.encode())
