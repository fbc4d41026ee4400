"""One valid event -> one CDC `passageCertification` element, XSD declaration order.

The passage is described once (`describe`, element by element into an `Out`) and written
two ways: as bytes directly (`passage_bytes`, what files hold: about a fifth of the CPU of
building an lxml tree and serialising it) and as an lxml element (`passage_element`, for a
caller that wants a tree). Both give the same bytes (tests compare them over every kind of
event and every character); a value lxml would refuse (a control character, a surrogate) goes
through lxml, which raises as it always did.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Protocol

from lxml import etree

from accrochage.models.event import DeliveredEvent, Holder
from accrochage.sinks.profiles import NAMESPACE, XSI, SchemaProfile

NSMAP = {"cpf": NAMESPACE, "xsi": XSI}
_NIL = f"{{{XSI}}}nil"
_Element = etree._Element

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


class Out(Protocol):
    """Where the passage's description (`describe`) writes its elements, in document order."""

    def leaf(self, name: str, value: str | None) -> None:
        """A child element with text, omitted when the value is absent (minOccurs=0)."""

    def nillable(self, name: str, value: str | None) -> None:
        """A mandatory element that is `xsi:nil="true"` when the value is absent."""

    def open(self, name: str) -> None:
        """A child element holding elements, the next ones written inside it until `close`."""

    def close(self, name: str) -> None:
        """The end of the element `open` began."""


def _day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _int(value: int | None) -> str | None:
    return str(value) if value is not None else None


def born_abroad_country(insee_code: str | None) -> str | None:
    """INSEE `99xxx` is a foreign country; its last three digits are `codePaysNaissance`."""
    if insee_code is not None and insee_code.startswith("99"):
        return insee_code[2:]
    return None


def _titulaire(out: Out, holder: Holder) -> None:
    out.open("titulaire")
    out.leaf("nomNaissance", holder.birth_name)
    out.nillable("nomUsage", holder.usage_name)
    for position, first_name in enumerate(holder.first_names, start=1):
        out.leaf(f"prenom{position}", first_name)
    out.leaf("anneeNaissance", str(holder.birth_date.year))
    out.nillable("moisNaissance", _int(holder.birth_date.month))
    out.nillable("jourNaissance", _int(holder.birth_date.day))
    out.leaf("sexe", holder.sex)
    place = holder.birth_place
    out.open("codeCommuneNaissance")
    if place is not None and place.insee_code is not None:
        out.open("codeInseeNaissance")
        out.leaf("codeInsee", place.insee_code)
        out.close("codeInseeNaissance")
    else:
        out.open("codePostalNaissance")
        out.nillable("codePostal", place.postal_code if place else None)
        out.close("codePostalNaissance")
    out.close("codeCommuneNaissance")
    if place is not None:
        out.leaf("libelleCommuneNaissance", place.city)
        out.leaf("codePaysNaissance", place.country_code or born_abroad_country(place.insee_code))
        out.leaf("libellePaysNaissance", place.country)
    out.close("titulaire")


def exports_national_id(holder: Holder | None, profile: SchemaProfile) -> bool:
    return (
        profile.national_id
        and holder is not None
        and holder.nir is not None
        and holder.nir[0] in "12"
    )


def _identification(out: Out, event: DeliveredEvent, profile: SchemaProfile) -> None:
    out.open("identificationTitulaire")
    holder = event.holder
    if holder is not None and exports_national_id(holder, profile):
        out.open("identifiantNational")
        out.leaf("nir", (holder.nir or "")[:13])
        out.leaf("nomNaissance", holder.birth_name)
        out.close("identifiantNational")
    elif holder is not None:
        _titulaire(out, holder)
    elif event.cpf_file is not None:
        out.open("dossierFormation")
        out.leaf("idDossier", event.cpf_file.id)
        out.leaf("nomTitulaire", event.cpf_file.holder_name)
        out.leaf("prenom1Titulaire", event.cpf_file.holder_first_name)
        out.close("dossierFormation")
    out.close("identificationTitulaire")


def _digital(out: Out, event: DeliveredEvent) -> None:
    level = event.digital_level
    out.leaf("presenceNiveauNumeriqueEuro", "true" if level is not None else "false")
    if level is None:
        return
    out.open("niveauNumeriqueEuropeen")
    out.leaf("scoreGeneral", _int(level.general_score))
    if level.results:
        out.open("resultats")
        for result in level.results:
            out.open("resultat")
            out.leaf("niveau", _int(result.level))
            out.leaf("domaineCompetenceId", result.area)
            out.leaf("competenceId", result.competence)
            out.close("resultat")
        out.close("resultats")
    out.close("niveauNumeriqueEuropeen")


PASSAGE = "passageCertification"


def describe(out: Out, event: DeliveredEvent, profile: SchemaProfile) -> None:
    """The passage of `event` in `profile`, element by element (see the module's docstring)."""
    out.open(PASSAGE)
    out.leaf("idTechnique", event.record_id)
    out.leaf("urlPreuve", event.proof_url)
    out.leaf("libelleOption", event.option_label)
    out.leaf("obtentionCertification", event.obtention)
    out.leaf("donneeCertifiee", "true" if event.certified else "false")
    exam = event.exam
    if exam is not None:
        out.leaf("dateDebutExamen", _day(exam.start))
        out.leaf("dateFinExamen", _day(exam.end))
        out.leaf("modalitePassageExamen", exam.mode)
        out.leaf("codePostalCentreExamen", exam.center_postal_code)
    out.leaf("dateDebutValidite", event.delivered_on.isoformat())
    out.nillable("dateFinValidite", _day(event.valid_until))
    out.leaf("presenceNiveauLangueEuro", "true" if event.language_level else "false")
    out.leaf("niveauLangueEuropeen", event.language_level)
    _digital(out, event)
    out.nillable("scoring", event.score)
    out.nillable("mentionValidee", event.mention)
    registration = event.registration
    out.open("modalitesInscription")
    out.nillable("modaliteAcces", registration.access_mode if registration else None)
    if registration is not None:
        out.leaf("voieAccessVAE", registration.vae_path)
        out.leaf("initiativeInscription", registration.initiative)
        out.leaf("dateInscription", _day(registration.date))
    out.close("modalitesInscription")
    _identification(out, event, profile)
    out.leaf("verbatim", event.verbatim)
    out.close(PASSAGE)


class _Tree:
    """Builds the passage as lxml elements."""

    def __init__(self) -> None:
        self.root: _Element | None = None
        self._open: list[_Element] = []

    def leaf(self, name: str, value: str | None) -> None:
        if value is not None:
            etree.SubElement(self._open[-1], q(name)).text = value

    def nillable(self, name: str, value: str | None) -> None:
        node = etree.SubElement(self._open[-1], q(name))
        if value is None:
            node.set(_NIL, "true")
        else:
            node.text = value

    def open(self, name: str) -> None:
        if self._open:
            self._open.append(etree.SubElement(self._open[-1], q(name)))
        else:
            self.root = etree.Element(q(name), nsmap=NSMAP)
            self._open.append(self.root)

    def close(self, name: str) -> None:
        closed = self._open.pop()
        assert closed.tag == q(name), f"{name} closed while {closed.tag} is open"


def passage_element(event: DeliveredEvent, profile: SchemaProfile) -> _Element:
    """The passage as an lxml element carrying the flux namespace map."""
    tree = _Tree()
    describe(tree, event, profile)
    assert tree.root is not None, "a passage is one element"
    return tree.root


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
    text = _Text()
    try:
        describe(text, event, profile)
    except _NotXml:
        return fragment(passage_element(event, profile)) + b"\n"
    text.parts.append("\n")
    return "".join(text.parts).encode("utf-8")


class _NotXml(Exception):
    """A text lxml would refuse: lxml is left to say so."""


class _Text:
    """Writes the passage as lxml serialises it, a string an element: ingest writes every
    event's passage, so no tree is built and walked again."""

    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts: list[str] = []

    def leaf(self, name: str, value: str | None) -> None:
        if value is not None:
            self.parts.append(f"<cpf:{name}>{_escaped(value)}</cpf:{name}>")

    def nillable(self, name: str, value: str | None) -> None:
        if value is None:
            self.parts.append(f'<cpf:{name} xsi:nil="true"/>')
        else:
            self.leaf(name, value)

    def open(self, name: str) -> None:
        self.parts.append(f"<cpf:{name}>")

    def close(self, name: str) -> None:
        parts = self.parts
        if parts[-1] == f"<cpf:{name}>":
            parts[-1] = f"<cpf:{name}/>"  # lxml's empty element
        else:
            parts.append(f"</cpf:{name}>")


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
