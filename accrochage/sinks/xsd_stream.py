"""The streamed XSD check: a file fed to a validating pull parser line by line, in flat memory.

lxml validates as it parses and hands each element to a target that keeps no tree: each
finished passage is dropped, so a 190 MB file costs no more memory than a small one. The few
elements that say where the parse is (a passage's `idTechnique`, a certification's `code`)
are read back, so each schema error becomes a fault with its line, its element and its place,
reduced to the rule it breaks (never quoting a value). `sinks/gate.py` decides which file
gets here, once its head was checked: no document with a DTD ever reaches this parser.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from lxml import etree

from accrochage.sinks.faults import Fault
from accrochage.sinks.profiles import NAMESPACE
from accrochage.sinks.xsd_messages import SUBJECT, reduce_schema_error, syntax_rule

_CHUNK = 1 << 16
_TEXT_CAP = 200

_PASSAGE = "passageCertification"
_CERTIFICATIONS = "certifications"
_KEPT_TEXT = frozenset({"idTechnique", "code"})


_NS = f"{{{NAMESPACE}}}"
_EVENT_TAGS = tuple(f"{_NS}{name}" for name in ("flux", _PASSAGE, _CERTIFICATIONS, *_KEPT_TEXT))
PASSAGE_TAG = f"{_NS}{_PASSAGE}"
"""A passage's qualified tag, as lxml names it."""
MAX_FAULTS = 1000
"""Faults kept per file; the others are counted (a file broken everywhere is broken)."""


@dataclass(slots=True)
class _Passage:
    number: int
    id_technique: str | None = None


@dataclass(slots=True)
class _Where:
    """How far the streamed parse got, and what the piece just fed touched."""

    passages: int = 0
    open: _Passage | None = None
    touched: list[_Passage] = field(default_factory=list)
    """The passages open during the piece just fed (rendered files: one per line)."""
    code: str | None = None
    in_certifications: bool = False
    certifications_touched: bool = False
    closed: bool = False

    def begin_piece(self) -> None:
        self.touched = [self.open] if self.open is not None else []
        self.certifications_touched = self.in_certifications

    def place(self) -> str:
        if len(self.touched) == 1:
            return _named(self.touched[0])
        if self.touched:
            first, last = self.touched[0], self.touched[-1]
            return f"one of passages {_named(first)} to {_named(last)}"
        if self.certifications_touched:
            return f"certification {self.code}" if self.code else "certifications"
        return "in the header"


def _named(passage: _Passage) -> str:
    named = passage.id_technique
    return f"passage {passage.number} ({f'idTechnique {named}' if named else 'no idTechnique'})"


class _Checker:
    """Feeds a validating pull parser; reads back the few elements that say where it is,
    drops each finished passage (flat memory), and turns new XSD errors into faults."""

    def __init__(self, schema: etree.XMLSchema) -> None:
        self.parser = etree.XMLPullParser(
            events=("start", "end"),
            tag=_EVENT_TAGS,
            schema=schema,
            # not False: with a schema, lxml then drops fatal parse errors (a truncated file
            # passed). Safe only because a document with a DTD never gets here (`gate.py`).
            resolve_entities="internal",  # type: ignore[arg-type]  # lxml-stubs predate lxml 5
            no_network=True,
            load_dtd=False,
            huge_tree=False,
        )
        self.where = _Where()
        self.faults: list[Fault] = []
        self.more = 0
        """XSD errors beyond MAX_FAULTS, counted only."""
        self._seen = 0

    def feed(self, line: int, piece: bytes) -> None:
        self.where.begin_piece()
        self.parser.feed(piece)
        self._read()
        self._collect(line)

    def close(self, line: int) -> None:
        self.where.begin_piece()
        self.parser.close()
        self._read()
        self._collect(line)

    def fail(self, exc: etree.XMLSyntaxError, line: int) -> None:
        self._read()
        self._collect(line)
        at, message = _syntax_error(exc)
        if SUBJECT.match(message):
            # Not a parse error: lxml raises the first XSD error again when the parser
            # closes. It is among the faults already; never quote it (it holds the value).
            if not (self.faults or self.more):
                element, rule = reduce_schema_error(message, "SCHEMAV")
                self.faults.append(Fault(rule, at or line, element, self.where.place()))
            return
        self.faults.append(Fault(syntax_rule(message), at or line))

    def _collect(self, line: int) -> None:
        if len(self.faults) >= MAX_FAULTS:
            return
        errors = self.parser.feed_error_log.filter_from_errors()
        for error in errors[self._seen :]:
            if error.domain_name not in {"SCHEMASV", "SCHEMASP"}:
                continue
            if len(self.faults) >= MAX_FAULTS:
                self.more += 1
                continue
            element, rule = reduce_schema_error(error.message, error.type_name)
            self.faults.append(Fault(rule, line, element, self.where.place()))
        self._seen = len(errors)

    def count_the_rest(self) -> None:
        if len(self.faults) >= MAX_FAULTS:
            errors = self.parser.feed_error_log.filter_from_errors()
            schema_errors = [e for e in errors[self._seen :] if e.domain_name == "SCHEMASV"]
            self.more += len(schema_errors)

    def _read(self) -> None:
        where = self.where
        for event, item in self.parser.read_events():
            element: Any = item  # the stubs lack keep_tail
            name = element.tag.rpartition("}")[2]
            if event == "start":
                if name == _PASSAGE:
                    where.passages += 1
                    where.open = _Passage(where.passages)
                    where.touched.append(where.open)
                elif name == _CERTIFICATIONS:
                    where.in_certifications = where.certifications_touched = True
                continue
            if name == "idTechnique" and where.open is not None:
                where.open.id_technique = (element.text or "").strip()[:_TEXT_CAP] or None
            elif name == "code" and where.open is None:
                where.code = (element.text or "").strip()[:_TEXT_CAP] or None
            elif name == _PASSAGE:
                where.open = None
                _drop(element)
            elif name == _CERTIFICATIONS:
                where.in_certifications = False
            elif name == "flux":
                where.closed = True


def _drop(element: Any) -> None:
    """Free a finished passage and the finished siblings before it."""
    element.clear(keep_tail=True)
    parent = element.getparent()
    while parent is not None and element.getprevious() is not None:
        del parent[0]


def _lines(handle: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """Line by line (at most 64 KiB at a time), each piece with the line it starts on."""
    line = 1
    for chunk in iter(lambda: handle.readline(_CHUNK), b""):
        yield line, chunk
        line += chunk.count(b"\n")


def parse(handle: BinaryIO, schema: etree.XMLSchema) -> _Checker:
    checker = _Checker(schema)
    line = 1
    try:
        for line, piece in _lines(handle):
            checker.feed(line, piece)
        checker.close(line)
    except etree.XMLSyntaxError as exc:
        checker.fail(exc, line)
    checker.count_the_rest()
    return checker


_TARGET_ERROR = re.compile(
    r"^line (?P<line>[0-9]+): (?P<literal>b?(?P<q>['\"]).*(?P=q))$", re.DOTALL
)


def _syntax_error(exc: etree.XMLSyntaxError) -> tuple[int | None, str]:
    """The line and text of a parse error; through a parser target lxml gives them as
    `line N: b'...'` (a bytes repr), which is decoded here, never printed as such."""
    text = _text_of(exc.msg)
    found = _TARGET_ERROR.match(text)
    if found is None:
        return exc.lineno or None, text
    try:
        literal = ast.literal_eval(found["literal"])
    except (ValueError, SyntaxError):
        literal = found["literal"]
    return int(found["line"]), _text_of(literal)


def _text_of(message: object) -> str:
    """lxml sometimes hands a message as bytes: decode it, never print its repr."""
    if isinstance(message, bytes):
        return message.decode("utf-8", "replace")
    return str(message)
