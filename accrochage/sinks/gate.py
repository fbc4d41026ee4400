"""The XSD gate: a file is checked against the schema while it is read, with flat memory.

lxml validates as it parses and hands each element to a target that keeps no tree, so a
190 MB file costs no more memory than a small one. Every schema error is collected, each with
its line, its element and where it is (the header, a certification, or a passage named by its
`idTechnique`), and reduced to the rule it breaks: a message never quotes a value, so no name
or NIR reaches a log, the state or an HTTP answer through it.

Before lxml reads a byte, the file is refused if it is not a regular file, is above the CDC's
size limit, is not UTF-8 or declares another encoding, or declares a DTD. A DTD is the only
place entities are declared, so none can be expanded; and lxml 6 with libxml2 2.14 crashes
(SIGSEGV) when an entity is substituted while a schema validates the parse, so no document
with a DTD may ever reach the validating parser.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

from lxml import etree

from accrochage.errors import ConfigError, SchemaValidationError
from accrochage.models.vocabulary import SchemaVersion
from accrochage.sinks.profiles import NAMESPACE, SchemaProfile, profile_for
from accrochage.sinks.regular import open_regular

MAX_FILE_BYTES = 200_000_000
"""The CDC takes files of at most 200 MB (SPEC.md, size and volume)."""

_CHUNK = 1 << 16
_HEAD = 1 << 16
"""What the prolog (declaration, comments, DOCTYPE) may take before the root element."""
_SHOWN = 20
"""Faults quoted in an exception's message; `FileCheck.faults` keeps every one."""
_TEXT_CAP = 200

_PASSAGE = "passageCertification"
_CERTIFICATIONS = "certifications"
_KEPT_TEXT = frozenset({"idTechnique", "code"})


@dataclass(frozen=True, slots=True)
class CheckResult:
    path: Path
    passages: int
    schema: Path


@dataclass(frozen=True, slots=True)
class Fault:
    """One reason a file fails: never a value of the file, only where and which rule."""

    rule: str
    line: int | None = None
    element: str | None = None
    place: str | None = None

    def __str__(self) -> str:
        where = [f"line {self.line}"] if self.line else []
        where += [self.place] if self.place else []
        where += [f"element {self.element}"] if self.element else []
        return f"{', '.join(where)}: {self.rule}" if where else self.rule


@dataclass(frozen=True, slots=True)
class FileCheck:
    path: Path
    schema: Path
    passages: int
    faults: tuple[Fault, ...]

    @property
    def ok(self) -> bool:
        return not self.faults

    def message(self, shown: int = _SHOWN) -> str:
        lines = [f"{self.path}: {len(self.faults)} error(s) (checked against {self.schema})"]
        lines += [f"  {fault}" for fault in self.faults[:shown]]
        if len(self.faults) > shown:
            lines.append(f"  ... and {len(self.faults) - shown} more")
        return "\n".join(lines)


# -- the schema --------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _load(path: Path) -> etree.XMLSchema:
    try:
        parser = etree.XMLParser(resolve_entities=False, no_network=True)
        return etree.XMLSchema(etree.parse(str(path), parser))
    except (OSError, etree.XMLSyntaxError, etree.XMLSchemaParseError) as exc:
        raise ConfigError(f"cannot load the XSD {path}: {exc}; check schema.xsd / --xsd") from None


def schema_path(profile: SchemaProfile, override: Path | None = None) -> Path:
    return (override or profile.bundled_xsd).resolve()


def load_schema(path: Path) -> etree.XMLSchema:
    return _load(path.resolve())


# -- what lxml says, reduced -------------------------------------------------------------------

_SUBJECT = re.compile(
    r"^Element '(?:\{[^}]*\})?(?P<element>[^']+)'(?:, attribute '(?P<attribute>[^']+)')?: "
    r"(?P<rest>.*)$",
    re.DOTALL,
)
_FACET = re.compile(r"^\[facet '(?P<facet>[A-Za-z]+)'\]")
_LENGTH = re.compile(r"allowed (?P<which>minimum |maximum )?length of '(?P<n>[0-9]+)'\.$")
_PATTERN = re.compile(r".*is not accepted by the pattern '(?P<pattern>.*)'\.$", re.DOTALL)
_ENUMERATION = re.compile(r".*is not an element of the set (?P<set>\{.*\})\.$", re.DOTALL)
_DATATYPE = re.compile(
    r".*is not a valid value of the (?P<kind>(?:local )?(?:atomic|list|union)) type"
    r"(?: '(?:\{[^}]*\})?(?P<type>[^']*)')?\.$",
    re.DOTALL,
)
_NAMESPACED = re.compile(r"\{[^}]*\}")
_STRUCTURAL = frozenset(
    {
        "SCHEMAV_ELEMENT_CONTENT",
        "SCHEMAV_CVC_ELT_1",
        "SCHEMAV_CVC_ELT_2",
        "SCHEMAV_CVC_ELT_3_1",
        "SCHEMAV_CVC_ELT_3_2_1",
        "SCHEMAV_CVC_ELT_3_2_2",
        "SCHEMAV_CVC_COMPLEX_TYPE_2_1",
        "SCHEMAV_CVC_COMPLEX_TYPE_2_3",
        "SCHEMAV_CVC_COMPLEX_TYPE_2_4",
        "SCHEMAV_CVC_COMPLEX_TYPE_3_2_1",
        "SCHEMAV_CVC_COMPLEX_TYPE_3_2_2",
        "SCHEMAV_CVC_COMPLEX_TYPE_4",
    }
)
"""Messages that name elements and attributes of the schema only, never a value."""


def _facet_rule(facet: str, rest: str) -> str:
    prefix = f"[facet '{facet}'] the value"
    if facet == "enumeration" and (found := _ENUMERATION.match(rest)):
        return f"{prefix} is not one of {found['set']}"
    if facet == "pattern" and (found := _PATTERN.match(rest)):
        return f"{prefix} does not match the pattern '{found['pattern']}'"
    if facet.endswith(("length", "Length")) and (found := _LENGTH.search(rest)):
        if found["which"] == "minimum ":
            return f"{prefix} is shorter than the minimum length of {found['n']}"
        if found["which"] == "maximum ":
            return f"{prefix} is longer than the maximum length of {found['n']}"
        return f"{prefix} does not have the required length of {found['n']}"
    return f"{prefix} breaks this facet"


def _rule(type_name: str, rest: str) -> str:
    """The rule an error breaks, in words built from the schema, never from the value."""
    if found := _FACET.match(rest):
        return _facet_rule(found["facet"], rest)
    if found := _DATATYPE.match(rest):
        named = f" '{found['type']}'" if found["type"] else ""
        return f"the value is not a valid value of the {found['kind']} type{named}"
    if type_name in _STRUCTURAL and "The value '" not in rest:
        return _NAMESPACED.sub("", rest).strip()
    return f"the value breaks the schema rule {type_name}"


def reduce_schema_error(message: str, type_name: str) -> tuple[str | None, str]:
    """(the element, or element/@attribute, named in an XSD error; the rule it breaks)."""
    found = _SUBJECT.match(message.strip())
    if found is None:
        return None, f"the document breaks the schema rule {type_name}"
    element = found["element"]
    if found["attribute"]:
        element = f"{element}/@{_NAMESPACED.sub('', found['attribute'])}"
    return element, _rule(type_name, found["rest"].strip())


def _syntax_rule(message: str) -> str:
    """A well-formedness error, without the bytes libxml2 quotes from the file."""
    first = message.strip().splitlines()[0] if message.strip() else "not well-formed"
    if "UTF-8" in first or "character encoding" in first:
        return "the file is not UTF-8: save it as UTF-8"
    return f"not well-formed XML: {first.rstrip(' ,!')}"


# -- before lxml reads: kind, size, encoding, DTD ---------------------------------------------

_BOMS = (
    (b"\xef\xbb\xbf", None),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\xfe\xff", "UTF-16"),
    (b"\xff\xfe", "UTF-16"),
)
_DECLARATION = re.compile(rb"^<\?xml\s[^>]*?\?>", re.DOTALL)
_ENCODING = re.compile(rb"""\sencoding\s*=\s*["']([^"']*)["']""")


def _encoding_fault(head: bytes) -> tuple[Fault | None, bytes]:
    """A fault if the file is not UTF-8 or says another encoding; the head after any BOM."""
    for bom, name in _BOMS:
        if head.startswith(bom):
            if name is not None:
                return Fault(f"the file is {name} (byte order mark): save it as UTF-8", 1), b""
            head = head[len(bom) :]
            break
    if b"\x00" in head[:4]:
        return Fault("the file is not UTF-8 (UTF-16 or UTF-32?): save it as UTF-8", 1), b""
    declaration = _DECLARATION.match(head)
    if declaration is not None:
        encoding = _ENCODING.search(declaration.group(0))
        name = encoding.group(1).decode("ascii", "replace") if encoding else "UTF-8"
        if name.replace("_", "-").upper() not in {"UTF-8", "UTF8"}:
            return Fault(
                f"the file declares encoding {name!r}: the CDC takes UTF-8 only; "
                'save it as UTF-8 with encoding="UTF-8"',
                1,
            ), b""
        head = head[declaration.end() :]
    return None, head


def _dtd_fault(prolog: bytes, first_line: int, complete: bool) -> Fault | None:
    """Walk the prolog (comments, processing instructions) up to the root: no DOCTYPE.

    `complete`: the whole file is in `prolog`; otherwise a prolog that does not reach its
    root element within the bytes read is refused rather than guessed at.
    """
    too_long = Fault(f"more than {_HEAD} bytes precede the root element: refused", first_line)
    ends = {b"<?": b"?>", b"<!--": b"-->"}
    position = 0
    while True:
        while position < len(prolog) and prolog[position : position + 1].isspace():
            position += 1
        rest = prolog[position:]
        opening = next((o for o in ends if rest.startswith(o)), None)
        if opening is None:
            break
        end = rest.find(ends[opening], len(opening))
        if end < 0:
            return None if complete else too_long  # the parser says what is unfinished
        position += end + len(ends[opening])
    if prolog[position:].startswith(b"<!"):
        return Fault(
            "the file declares a DTD (<!DOCTYPE>): DTDs and entities are refused, never "
            "expanded; remove the DOCTYPE (CDC files have none)",
            first_line + prolog[:position].count(b"\n"),
        )
    if not complete and len(prolog) - position < len(b"<!DOCTYPE"):
        return too_long
    return None


def _head_fault(head: bytes) -> Fault | None:
    """The encoding and the DTD, from the first bytes of the file."""
    fault, prolog = _encoding_fault(head)
    if fault is not None:
        return fault
    first_line = 1 + head[: len(head) - len(prolog)].count(b"\n")
    return _dtd_fault(prolog, first_line, complete=len(head) < _HEAD)


# -- the schema version a file is written in ---------------------------------------------------


def version_of(path: Path) -> SchemaVersion:
    """1.1.5 when the flux carries `action`, 1.1.2 otherwise (read from the header only).

    The file's kind, size, encoding and DTD are checked first: a file refused there is
    checked against 1.1.2 and refused again, with the reason, by `inspect_file`.
    """
    try:
        with open_regular(path, max_bytes=MAX_FILE_BYTES, refuse=SchemaValidationError) as handle:
            head = handle.read(_HEAD)
            if _head_fault(head) is not None:
                return SchemaVersion.V1_1_2
            handle.seek(0)
            return _version_from(handle)
    except (SchemaValidationError, OSError):
        return SchemaVersion.V1_1_2


def _version_from(handle: BinaryIO) -> SchemaVersion:
    parser = etree.XMLPullParser(
        events=("start",), resolve_entities=False, no_network=True, load_dtd=False
    )
    action = f"{{{NAMESPACE}}}action"
    header_ends = {f"{{{NAMESPACE}}}{name}" for name in ("emetteur", _CERTIFICATIONS)}
    try:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            parser.feed(chunk)
            for _, element in parser.read_events():
                tag = getattr(element, "tag", None)
                if tag == action:
                    return SchemaVersion.V1_1_5
                if tag in header_ends:
                    return SchemaVersion.V1_1_2
    except etree.XMLSyntaxError:
        pass
    return SchemaVersion.V1_1_2


def xsd_for_file(path: Path, version: SchemaVersion | None, override: Path | None) -> Path:
    """The XSD a file is checked against: `override`, or the bundled one of its version."""
    if override is not None:
        return schema_path(profile_for(SchemaVersion.V1_1_2), override)
    return schema_path(profile_for(version or version_of(path)))


# -- the streamed check ------------------------------------------------------------------------


_NS = f"{{{NAMESPACE}}}"
_EVENT_TAGS = tuple(f"{_NS}{name}" for name in ("flux", _PASSAGE, _CERTIFICATIONS, *_KEPT_TEXT))
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
            # passed). Safe only because a document with a DTD never gets here (see above).
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
        if _SUBJECT.match(message):
            # Not a parse error: lxml raises the first XSD error again when the parser
            # closes. It is among the faults already; never quote it (it holds the value).
            if not (self.faults or self.more):
                element, rule = reduce_schema_error(message, "SCHEMAV")
                self.faults.append(Fault(rule, at or line, element, self.where.place()))
            return
        self.faults.append(Fault(_syntax_rule(message), at or line))

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


def _parse(handle: BinaryIO, schema: etree.XMLSchema) -> _Checker:
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


def inspect_file(path: Path, xsd: Path) -> FileCheck:
    """Check one file against `xsd`; every fault is in the answer, nothing is raised for it.

    The file is fed line by line (at most 64 KiB at a time): a rendered flux holds one passage
    per line, a pretty-printed one an element per line, so each fault carries its line.
    """
    schema = load_schema(xsd)
    try:
        with open_regular(path, max_bytes=MAX_FILE_BYTES, refuse=SchemaValidationError) as handle:
            fault = _head_fault(handle.read(_HEAD))
            if fault is not None:
                return FileCheck(path, xsd, 0, (fault,))
            handle.seek(0)
            checker = _parse(handle, schema)
    except SchemaValidationError as exc:
        return FileCheck(path, xsd, 0, (Fault(f"the file {exc}"),))
    except OSError as exc:
        return FileCheck(path, xsd, 0, (Fault(f"the file cannot be read ({exc.strerror})"),))
    faults = checker.faults
    if checker.more:
        faults.append(Fault(f"and {checker.more} more schema error(s), not listed"))
    if not faults and not checker.where.closed:
        faults.append(Fault("the document ends before </cpf:flux> (truncated?)"))
    return FileCheck(path, xsd, checker.where.passages, tuple(faults))


def check_file(path: Path, xsd: Path) -> CheckResult:
    """Validate `path` against `xsd` while streaming; raise with every fault (the first 20)."""
    result = inspect_file(path, xsd)
    if not result.ok:
        raise SchemaValidationError(result.message())
    return CheckResult(path, result.passages, xsd)
