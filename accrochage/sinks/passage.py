"""One valid event -> one CDC `passageCertification` element, XSD declaration order.

The passage is described once, as nodes (`passage_nodes`), and written two ways: as bytes
directly (`passage_bytes`, what files hold: about a third of the CPU of building an lxml
tree and serialising it) and as an lxml element (`passage_element`, for a caller that wants
a tree). Both give the same bytes (tests compare them over every kind of event and every
character); a value lxml would refuse (a control character, a surrogate) goes through lxml,
which raises as it always did.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

from lxml import etree

from accrochage.models.event import DeliveredEvent, Holder
from accrochage.sinks.profiles import NAMESPACE, XSI, SchemaProfile

NSMAP = {"cpf": NAMESPACE, "xsi": XSI}
_NIL = f"{{{XSI}}}nil"
_Element = etree._Element

Node = tuple[str, "str | list[Node] | None"]
"""An element: its name and its text, its children, or None for `xsi:nil="true"`."""

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
"""The characters lxml refuses in a text (XML 1.0's Char production), checked by scanning
every code point against lxml (tests/unit/test_passage_bytes.py)."""


def q(name: str) -> str:
    return f"{{{NAMESPACE}}}{name}"


def element(name: str, value: str) -> _Element:
    """A standalone leaf carrying the flux namespace map (see `fragment`)."""
    node = etree.Element(q(name), nsmap=NSMAP)
    node.text = value
    return node


def leaf(parent: list[Node], name: str, value: str | None) -> None:
    """A child element with text, omitted when the value is absent (minOccurs=0)."""
    if value is not None:
        parent.append((name, value))


def nillable(parent: list[Node], name: str, value: str | None) -> None:
    """A mandatory element that is `xsi:nil="true"` when the value is absent."""
    parent.append((name, value))


def group(parent: list[Node], name: str) -> list[Node]:
    """A child element holding elements; its children, to add to."""
    children: list[Node] = []
    parent.append((name, children))
    return children


def _day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _int(value: int | None) -> str | None:
    return str(value) if value is not None else None


def born_abroad_country(insee_code: str | None) -> str | None:
    """INSEE `99xxx` is a foreign country; its last three digits are `codePaysNaissance`."""
    if insee_code is not None and insee_code.startswith("99"):
        return insee_code[2:]
    return None


def _titulaire(parent: list[Node], holder: Holder) -> None:
    node = group(parent, "titulaire")
    leaf(node, "nomNaissance", holder.birth_name)
    nillable(node, "nomUsage", holder.usage_name)
    for position, first_name in enumerate(holder.first_names, start=1):
        leaf(node, f"prenom{position}", first_name)
    leaf(node, "anneeNaissance", str(holder.birth_date.year))
    nillable(node, "moisNaissance", _int(holder.birth_date.month))
    nillable(node, "jourNaissance", _int(holder.birth_date.day))
    leaf(node, "sexe", holder.sex)
    place = holder.birth_place
    commune = group(node, "codeCommuneNaissance")
    if place is not None and place.insee_code is not None:
        insee = group(commune, "codeInseeNaissance")
        leaf(insee, "codeInsee", place.insee_code)
    else:
        postal = group(commune, "codePostalNaissance")
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


def _identification(parent: list[Node], event: DeliveredEvent, profile: SchemaProfile) -> None:
    node = group(parent, "identificationTitulaire")
    holder = event.holder
    if holder is not None and exports_national_id(holder, profile):
        national = group(node, "identifiantNational")
        leaf(national, "nir", (holder.nir or "")[:13])
        leaf(national, "nomNaissance", holder.birth_name)
    elif holder is not None:
        _titulaire(node, holder)
    elif event.cpf_file is not None:
        dossier = group(node, "dossierFormation")
        leaf(dossier, "idDossier", event.cpf_file.id)
        leaf(dossier, "nomTitulaire", event.cpf_file.holder_name)
        leaf(dossier, "prenom1Titulaire", event.cpf_file.holder_first_name)


def _digital(parent: list[Node], event: DeliveredEvent) -> None:
    level = event.digital_level
    leaf(parent, "presenceNiveauNumeriqueEuro", "true" if level is not None else "false")
    if level is None:
        return
    node = group(parent, "niveauNumeriqueEuropeen")
    leaf(node, "scoreGeneral", _int(level.general_score))
    if level.results:
        results = group(node, "resultats")
        for result in level.results:
            item = group(results, "resultat")
            leaf(item, "niveau", _int(result.level))
            leaf(item, "domaineCompetenceId", result.area)
            leaf(item, "competenceId", result.competence)


def passage_nodes(event: DeliveredEvent, profile: SchemaProfile) -> Node:
    """The passage of `event` in `profile`, as nodes (see the module's docstring)."""
    root: list[Node] = []
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
    modalities = group(root, "modalitesInscription")
    nillable(modalities, "modaliteAcces", registration.access_mode if registration else None)
    if registration is not None:
        leaf(modalities, "voieAccessVAE", registration.vae_path)
        leaf(modalities, "initiativeInscription", registration.initiative)
        leaf(modalities, "dateInscription", _day(registration.date))
    _identification(root, event, profile)
    leaf(root, "verbatim", event.verbatim)
    return ("passageCertification", root)


def passage_element(event: DeliveredEvent, profile: SchemaProfile) -> _Element:
    """The passage as an lxml element carrying the flux namespace map."""
    name, children = passage_nodes(event, profile)
    root = etree.Element(q(name), nsmap=NSMAP)
    _build(root, children)
    return root


def _build(parent: _Element, content: str | list[Node] | None) -> None:
    if isinstance(content, str):
        parent.text = content
    elif content is None:
        parent.set(_NIL, "true")
    else:
        for name, inner in content:
            _build(etree.SubElement(parent, q(name)), inner)


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
    """The passage's line in a file: the bytes lxml would serialise (`fragment`), and `\\n`."""
    name, children = passage_nodes(event, profile)
    assert isinstance(children, list), "a passage holds elements"
    out: list[str] = [f"<cpf:{name}>"]
    try:
        _write(children, out.append)
    except _NotXml:
        return fragment(passage_element(event, profile)) + b"\n"
    out.append(f"</cpf:{name}>\n")
    return "".join(out).encode("utf-8")


class _NotXml(Exception):
    """A text lxml would refuse: lxml is left to say so."""


def _write(children: list[Node], append: Callable[[str], None]) -> None:
    """The children's elements, a string or two each. Ingest writes every event's passage:
    one call per element holding elements, not per element."""
    for name, content in children:
        if isinstance(content, str):
            append(f"<cpf:{name}>{_escaped(content)}</cpf:{name}>")
        elif content is None:
            append(f'<cpf:{name} xsi:nil="true"/>')
        elif content:
            append(f"<cpf:{name}>")
            _write(content, append)
            append(f"</cpf:{name}>")
        else:
            append(f"<cpf:{name}/>")


def _escaped(text: str) -> str:
    """Text as libxml2 writes it in an element (UTF-8 output): `&`, `<`, `>` and CR.

    A printable text holds none of `_NOT_XML` (controls, surrogates and non-characters are not
    printable) and no CR: only the rare other one is searched.
    """
    printable = text.isprintable()
    if not printable and _NOT_XML.search(text) is not None:
        raise _NotXml
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    if not printable and "\r" in text:
        text = text.replace("\r", "&#13;")
    return text


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
