"""France compétences' RNCP/RS export: the CSV zip (or its CSV files), or the XML files.

Only what the rules need is kept: per fiche its status, end of registration, last day of
delivery (XML only), its certifiers' SIRETs and the fiches that replace it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from lxml import etree

from accrochage.errors import RefdataError
from accrochage.models.reference import Fiche, kind_of
from accrochage.refdata.sources import READ_FAILURES, Bounded, Source, date_in, sources
from accrochage.refdata.tables import clean, day, rows

_CSV = re.compile(r"export_fiches_CSV_(?P<part>.+?)_\d{4}_\d{2}_\d{2}\.csv", re.IGNORECASE)
_XML = re.compile(r"export_fiches_(?P<kind>RNCP|RS)_V[\w-]*?_\d{4}-\d{2}-\d{2}\.xml", re.IGNORECASE)
_OLDER = "ANCIENNES_CERTIFICATIONS/ANCIENNE_CERTIFICATION/ID_FICHE_ANCIENNE_CERTIFICATION"
_INACTIVE = {"inactif", "supprimé"}
"""`ETAT_CERTIFICATEUR` values of a certifier that may no longer deliver (any other is read as
active: a value not seen yet gives no warning)."""
_CSV_PARTS = {
    "standard": ("Numero_Fiche", "Actif", "Date_Fin_Enregistrement"),
    "certificateurs": ("Numero_Fiche", "Siret_Certificateur"),
    "ancienne_nouvelle_certification": (
        "Numero_Fiche",
        "Ancienne_Certification",
        "Nouvelle_Certification",
    ),
}


@dataclass(slots=True)
class _Draft:
    code: str
    active: bool = False
    end: date | None = None
    limit: date | None = None
    sirets: set[str] = field(default_factory=set)
    newer: list[str] = field(default_factory=list)
    unidentified: bool = False
    """A certifier of the fiche without a SIRET in the export."""
    inactive: dict[str, date | None] = field(default_factory=dict)
    active_sirets: set[str] = field(default_factory=set)

    def certifier(self, siret: str, active: bool = True, since: date | None = None) -> None:
        """One certifier of the fiche, by its SIRET as written (spaces and TABs dropped);
        one the export says is inactive, with the day its state changed. A SIRET listed
        both active and inactive (two entries) is active."""
        value = "".join(siret.split())
        if not value:
            self.unidentified = True
            return
        self.sirets.add(value)
        if active:
            self.active_sirets.add(value)
        else:
            self.inactive[value] = since

    def replaced_by(self, code: str) -> None:
        if code and code != self.code and code not in self.newer:
            self.newer.append(code)

    def fiche(self) -> Fiche:
        return Fiche(
            self.code,
            self.active,
            self.end,
            self.limit,
            frozenset(self.sirets),
            tuple(self.newer),
            self.unidentified,
            tuple(
                sorted(
                    (siret, since)
                    for siret, since in self.inactive.items()
                    if siret not in self.active_sirets
                )
            ),
        )


@dataclass(frozen=True, slots=True)
class Export:
    """The export as loaded: its fiches and what it was read from."""

    fiches: list[Fiche]
    kinds: frozenset[str]
    """The kinds of fiche it lists: RNCP, RS, or both."""
    day: date | None
    files: list[str]
    delivery_limits: bool
    """Whether it carries `DATE_LIMITE_DELIVRANCE` (the XML export does, the CSV does not)."""


def load_export(path: Path) -> Export:
    """Read the export at `path`: XML files when there are any, otherwise the CSV files; the
    CSV files too, when all their parts are there, if the XML lists one kind of fiche only (the
    other kind's fiches are read from them, without DATE_LIMITE_DELIVRANCE, rather than left
    unchecked)."""
    found = sources(path)
    xml = _newest(found, _XML, "kind")
    csv_parts = _newest(found, _CSV, "part")
    if xml:
        export = _from_xml(xml)
        missing = {"RNCP", "RS"} - export.kinds
        if missing and all(part in csv_parts for part in _CSV_PARTS):
            return _completed(export, _from_csv(csv_parts, path), missing)
        return export  # an incomplete CSV export beside it: the coverage warning says so
    if csv_parts:
        return _from_csv(csv_parts, path)
    raise RefdataError(
        f"{path} holds no France compétences export: expected export-fiches-csv-DATE.zip (or "
        "its export_fiches_CSV_*.csv files), or export_fiches_RNCP_V4_1_DATE.xml and "
        "export_fiches_RS_V4_1_DATE.xml (zipped or not)"
    )


def _completed(export: Export, csv: Export, missing: set[str]) -> Export:
    """The XML export, with the fiches of the `missing` kinds taken from the CSV export."""
    taken = [f for f in csv.fiches if kind_of(f.code) in missing]
    days = [d for d in (export.day, csv.day) if d is not None]
    return Export(
        fiches=export.fiches + taken,
        kinds=export.kinds | (csv.kinds & frozenset(missing)),
        day=min(days) if days else None,
        files=export.files + csv.files,
        delivery_limits=export.delivery_limits,
    )


def _newest(found: Iterable[Source], pattern: re.Pattern[str], group: str) -> dict[str, Source]:
    """The newest file of each part (by the date of the file it came from, then its own)."""
    best: dict[str, Source] = {}
    for source in found:
        match = pattern.fullmatch(source.name)
        if match is None:
            continue
        key = match.group(group).lower()
        current = best.get(key)
        if current is None or _age(source) >= _age(current):
            best[key] = source
    return best


def _age(source: Source) -> tuple[date, date]:
    return (date_in(source.origin) or date.min, source.day or date.min)


def _export_day(used: Iterable[Source]) -> date | None:
    """The oldest date of the files used: the zip's date first (the CSV's may be a day off)."""
    days = [date_in(s.origin) or s.day for s in used]
    known = [d for d in days if d is not None]
    return min(known) if known else None


def _file_label(source: Source) -> str:
    return source.name if source.origin == source.name else f"{source.origin}:{source.name}"


def _from_csv(parts: dict[str, Source], path: Path) -> Export:
    missing = [name for name in _CSV_PARTS if name not in parts]
    if missing:
        names = ", ".join(f"export_fiches_CSV_{m.title()}_DATE.csv" for m in missing)
        raise RefdataError(
            f"the France compétences CSV export in {path} lacks {names}: use the whole "
            "export-fiches-csv-DATE.zip as downloaded"
        )
    drafts: dict[str, _Draft] = {}
    standard = parts["standard"]
    for row in rows(standard.read(), _file_label(standard), _CSV_PARTS["standard"]):
        code = row["Numero_Fiche"]
        if not code:
            continue
        drafts[code] = _Draft(
            code,
            active=row["Actif"].upper() == "ACTIVE",
            end=day(row["Date_Fin_Enregistrement"], standard.name, "Date_Fin_Enregistrement"),
        )
    certifiers = parts["certificateurs"]
    for row in rows(certifiers.read(), _file_label(certifiers), _CSV_PARTS["certificateurs"]):
        draft = drafts.get(row["Numero_Fiche"])
        if draft is not None:
            draft.certifier(row["Siret_Certificateur"])
    links = parts["ancienne_nouvelle_certification"]
    columns = _CSV_PARTS["ancienne_nouvelle_certification"]
    for row in rows(links.read(), _file_label(links), columns):
        code = row["Numero_Fiche"]
        older, newer = row["Ancienne_Certification"], row["Nouvelle_Certification"]
        if code in drafts and newer:
            drafts[code].replaced_by(newer)
        if older in drafts and code:
            drafts[older].replaced_by(code)
    used = [parts[name] for name in _CSV_PARTS]
    return Export(
        [d.fiche() for d in drafts.values()],
        frozenset({"RNCP", "RS"}),
        _export_day(used),
        sorted({_file_label(s) for s in used}),
        delivery_limits=False,
    )


def _from_xml(files: dict[str, Source]) -> Export:
    drafts: dict[str, _Draft] = {}
    older: list[tuple[str, str]] = []
    for source in files.values():
        _read_xml(source, drafts, older)
    for old, code in older:
        if old in drafts:
            drafts[old].replaced_by(code)
    return Export(
        [d.fiche() for d in drafts.values()],
        frozenset(kind.upper() for kind in files),
        _export_day(files.values()),
        sorted(_file_label(s) for s in files.values()),
        delivery_limits=True,
    )


def _read_xml(source: Source, drafts: dict[str, _Draft], older: list[tuple[str, str]]) -> None:
    """Stream the FICHE elements (the RNCP file is hundreds of MB), through the file's bound;
    each element under the root is freed once read, a FICHE or not (a file of anything else
    held it all)."""
    label = _file_label(source)
    try:
        with source.opener() as stream:
            parser = etree.iterparse(
                Bounded(stream, source),
                events=("end",),
                resolve_entities=False,
                no_network=True,
                huge_tree=True,
            )
            for _, element in parser:
                parent = element.getparent()
                if element.tag == "FICHE":
                    draft = _fiche(element, label)
                    drafts[draft.code] = draft
                    older.extend((_text(old), draft.code) for old in element.iterfind(_OLDER))
                elif parent is None or parent.getparent() is not None:
                    continue  # inside an element under the root: freed with it
                element.clear(keep_tail=False)
                while parent is not None and element.getprevious() is not None:
                    del parent[0]
    except etree.XMLSyntaxError as exc:
        where = "" if f"line {exc.lineno}," in exc.msg else f", line {exc.lineno}"
        raise RefdataError(
            f"{label} is not well-formed XML ({exc.msg}{where}): download it again"
        ) from None
    except READ_FAILURES as exc:
        raise source.unreadable(exc) from None


def _text(element: etree._Element | None) -> str:
    return clean(element.text) if element is not None and element.text else ""


def _fiche(element: etree._Element, label: str) -> _Draft:
    code = _text(element.find("NUMERO_FICHE"))
    if not code:
        raise RefdataError(f"{label}: a FICHE has no NUMERO_FICHE; is it the RNCP/RS export?")
    draft = _Draft(code)
    draft.active = _text(element.find("ACTIF")).lower() == "oui"  # the direct child only
    where = f"{label} ({code})"
    draft.end = day(
        _text(element.find("DATE_FIN_ENREGISTREMENT")), where, "DATE_FIN_ENREGISTREMENT"
    )
    draft.limit = day(
        _text(element.find("DATE_LIMITE_DELIVRANCE")), where, "DATE_LIMITE_DELIVRANCE"
    )
    for certifier in element.iterfind("CERTIFICATEURS/CERTIFICATEUR"):
        state = _text(certifier.find("ETAT_CERTIFICATEUR")).lower()
        since = _text(certifier.find("DATE_DERNIERE_MODIFICATION_ETAT"))
        draft.certifier(
            _text(certifier.find("SIRET_CERTIFICATEUR")),
            active=state not in _INACTIVE,
            since=day(since, where, "DATE_DERNIERE_MODIFICATION_ETAT") if since else None,
        )
    path = "NOUVELLES_CERTIFICATIONS/NOUVELLE_CERTIFICATION/ID_FICHE_NOUVELLE_CERTIFICATION"
    for newer in element.iterfind(path):
        draft.replaced_by(_text(newer))
    return draft
