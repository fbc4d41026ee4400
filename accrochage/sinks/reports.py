"""Read the CDC processing report ("accusé de traitement", SPEC.md section 9).

Two variants exist: a processed file lists its passages under `PassagesKO` / `PassagesOK`;
a file rejected as a whole carries `erreurs/erreur` and no passage at all. Reports come from
outside, so they are parsed with entities, DTDs and network access off, and bounded in size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

from lxml import etree

from accrochage.errors import ReportError
from accrochage.models.cdc import already_exists
from accrochage.sinks.regular import read_regular

MAX_REPORT_BYTES = 256 * 1024 * 1024
"""The CDC takes files of up to 200,000 passages whose idTechnique may have 255 characters: a
report refusing them all with a long message is ~100 MB. It is read in a stream (`_read`),
so its size costs its bytes and its outcomes, not a tree."""

_ROOT = "rapport"
_KO = "PassagesKO"
_OK = "PassagesOK"
_ERRORS = "erreurs"
_ID = "idTechnique"
_HINT = "is this a CDC accusé de traitement? expected root <rapport>"
_DTD_MARKERS = (b"<!DOCTYPE", b"<!ENTITY")


@dataclass(frozen=True)
class PassageOutcome:
    id_technique: str
    accepted: bool
    message: str | None
    already_known: bool


@dataclass(frozen=True)
class FileError:
    type: str | None
    message: str
    line: int | None
    column: int | None


@dataclass(frozen=True)
class ProcessingReport:
    file_name: str | None
    id_flux: str | None
    id_traitement: str | None
    outcomes: tuple[PassageOutcome, ...]
    file_errors: tuple[FileError, ...]

    @property
    def rejected_whole_file(self) -> bool:
        return bool(self.file_errors)

    @property
    def accepted(self) -> tuple[str, ...]:
        return tuple(o.id_technique for o in self.outcomes if o.accepted)

    @property
    def rejected(self) -> tuple[PassageOutcome, ...]:
        return tuple(o for o in self.outcomes if not o.accepted)


def _fail(source: str, problem: str, fix: str) -> ReportError:
    return ReportError(f"{source}: {problem}; {fix}")


def _text(parent: etree._Element, tag: str) -> str | None:
    child = parent.find(tag)
    if child is None or child.text is None:
        return None
    return child.text.strip() or None


def _int_or_none(text: str | None) -> int | None:
    """A count or a line number; anything else (a 5,000-digit "line") is no number."""
    return int(text) if text is not None and re.fullmatch(r"[0-9]{1,18}", text) else None


def _ko_outcome(passage: etree._Element, source: str) -> PassageOutcome:
    if passage.tag != "passage":
        raise _fail(
            source,
            f"unexpected <{passage.tag}> inside <{_KO}>",
            f"each rejection must be a <passage> with <{_ID}> and <messageErreur>",
        )
    id_technique = _text(passage, _ID)
    if id_technique is None:
        raise _fail(
            source,
            f"a <passage> in <{_KO}> (line {passage.sourceline}) has no <{_ID}>",
            "the rejection cannot be matched to a record; ask the CDC for the full report",
        )
    message = _text(passage, "messageErreur")
    known = message is not None and already_exists(message)
    return PassageOutcome(id_technique, accepted=known, message=message, already_known=known)


def _ok_outcome(element: etree._Element, source: str) -> PassageOutcome:
    id_technique = (element.text or "").strip() if element.tag == _ID else ""
    if not id_technique:
        raise _fail(
            source,
            f"<{_OK}> holds <{element.tag}> (line {element.sourceline}) instead of an id",
            f"<{_OK}> must list non-empty <{_ID}> elements",
        )
    return PassageOutcome(id_technique, accepted=True, message=None, already_known=False)


def _file_error(erreur: etree._Element) -> FileError:
    return FileError(
        type=_text(erreur, "type"),
        message=_text(erreur, "message") or "",
        line=_int_or_none(_text(erreur, "ligne")),
        column=_int_or_none(_text(erreur, "colonne")),
    )


def _merge(outcomes: list[PassageOutcome], source: str) -> tuple[PassageOutcome, ...]:
    """Keep each id once, its refusal's outcome first (an "already exists" refusal keeps its
    message); an id both accepted and rejected cannot be trusted either way."""
    merged: dict[str, PassageOutcome] = {}
    for outcome in outcomes:
        seen = merged.setdefault(outcome.id_technique, outcome)
        if seen.accepted != outcome.accepted:
            raise _fail(
                source,
                f"idTechnique {outcome.id_technique} is reported both accepted and rejected",
                "the report contradicts itself; check the record on the CDC portal",
            )
    return tuple(merged.values())


def _refuse_unsafe_bytes(data: bytes, source: str) -> None:
    if len(data) > MAX_REPORT_BYTES:
        raise _fail(
            source,
            f"report is {len(data)} bytes, above the {MAX_REPORT_BYTES} byte limit",
            "a real accusé de traitement is far smaller; check the file",
        )
    if not data or data.isspace():
        raise _fail(source, "report is empty", "download the accusé de traitement again")
    if any(marker in data for marker in _DTD_MARKERS):
        raise _fail(source, "report declares a DOCTYPE or entities", "refused for safety")


def _check_root(root: etree._Element, source: str) -> None:
    docinfo = root.getroottree().docinfo
    # The byte scan misses UTF-16 input; the parsed prolog tells the truth.
    if docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise _fail(source, "report declares a DOCTYPE or entities", "refused for safety")
    if root.tag != _ROOT:
        raise _fail(source, f"root element is <{root.tag}>", _HINT)


@dataclass
class _Reading:
    """What the streamed report has told so far."""

    header: dict[str, str | None] = field(default_factory=dict)
    sections: set[str] = field(default_factory=set)
    rejected: list[PassageOutcome] = field(default_factory=list)
    accepted: list[PassageOutcome] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)

    def take(self, section: str, element: etree._Element, source: str) -> None:
        """One element of a section, whole (its end seen)."""
        if section == _KO:
            self.rejected.append(_ko_outcome(element, source))
        elif section == _OK:
            self.accepted.append(_ok_outcome(element, source))
        elif section == _ERRORS and element.tag == "erreur":
            self.errors.append(_file_error(element))


MAX_ELEMENTS_IN_A_PASSAGE = 1_000
"""A passage of a report holds a handful (idTechnique, messageErreur…): more is not a CDC
report, and all of them would be held in memory at once (10,000,000 took 1.35 GB)."""


def _read(data: bytes, source: str) -> _Reading:
    """The report's elements, read as they end and then dropped: memory stays that of the
    outcomes, not of a tree (a report of 200,000 refusals is a million elements)."""
    events = etree.iterparse(
        BytesIO(data),
        events=("start", "end"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    reading = _Reading()
    depth = 0
    section = ""
    inside = 0
    """Elements started within the current passage (or file error): each is held until it
    ends, so their number is bounded."""
    try:
        for event, element in events:
            if event == "start":
                if depth == 0:
                    _check_root(element, source)
                elif depth == 1:
                    section = element.tag
                elif depth == 2:
                    inside = 0
                else:
                    inside += 1
                    if inside > MAX_ELEMENTS_IN_A_PASSAGE:
                        raise _fail(
                            source,
                            f"an element of {section} holds more than "
                            f"{MAX_ELEMENTS_IN_A_PASSAGE} elements",
                            _HINT,
                        )
                depth += 1
                continue
            depth -= 1
            if depth == 2:
                reading.take(section, element, source)
                element.clear()
                while element.getprevious() is not None:
                    del element.getparent()[0]
            elif depth == 1:
                if section in (_KO, _OK, _ERRORS):
                    reading.sections.add(section)
                else:
                    reading.header.setdefault(section, _stripped(element.text))
                element.clear()
                while element.getprevious() is not None:
                    del element.getparent()[0]
    except etree.XMLSyntaxError as exc:
        raise _fail(source, f"report is not well-formed XML ({exc.msg})", _HINT) from None
    return reading


def _stripped(text: str | None) -> str | None:
    return (text.strip() or None) if text is not None else None


def parse_report(data: bytes, *, source: str = "<bytes>") -> ProcessingReport:
    _refuse_unsafe_bytes(data, source)
    reading = _read(data, source)
    if not reading.sections:
        raise _fail(
            source,
            f"no <{_KO}>, <{_OK}> or <{_ERRORS}> section (names are case-sensitive)",
            _HINT,
        )
    if _ERRORS in reading.sections and not reading.errors:
        raise _fail(
            source,
            f"<{_ERRORS}> holds no <erreur>",
            "the file was rejected for an unknown reason; check it on the CDC portal",
        )
    return ProcessingReport(
        file_name=reading.header.get("nomFichier"),
        id_flux=reading.header.get("idFlux"),
        id_traitement=reading.header.get("idTraitement"),
        outcomes=_merge(reading.rejected + reading.accepted, source),
        file_errors=tuple(reading.errors),
    )


def read_report_bytes(path: Path) -> bytes:
    """A report file's bytes: a regular file of at most MAX_REPORT_BYTES, checked from its
    `stat` before it is opened (a FIFO, a directory, a device or a huge file is refused
    without waiting and without reading)."""
    source = str(path)

    def refuse(problem: str) -> ReportError:
        return ReportError(f"{source}: the report {problem}")

    return read_regular(path, max_bytes=MAX_REPORT_BYTES, refuse=refuse)


def read_report(path: Path) -> ProcessingReport:
    return parse_report(read_report_bytes(path), source=str(path))
