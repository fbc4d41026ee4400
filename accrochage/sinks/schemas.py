"""The CDC's XSDs: loading one (lxml, no network, no entity), the version an XSD declares,
and the schema version a file is written in (read from its header only)."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

from lxml import etree

from accrochage.errors import ConfigError, SchemaValidationError
from accrochage.models.vocabulary import SchemaVersion
from accrochage.sinks.profiles import NAMESPACE, SchemaProfile, profile_for
from accrochage.sinks.prolog import HEAD, head_fault
from accrochage.sinks.regular import open_regular

MAX_FILE_BYTES = 200_000_000
"""The CDC takes files of at most 200 MB (SPEC.md, size and volume)."""


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


def declared_version(path: Path) -> str | None:
    """The `version` attribute of an XSD's `xsd:schema` (the CDC's files carry it), if any."""
    try:
        parser = etree.XMLParser(resolve_entities=False, no_network=True)
        version = etree.parse(str(path), parser).getroot().get("version")
    except (OSError, etree.XMLSyntaxError):
        return None
    return version.strip() if version else None


# -- the schema version a file is written in ---------------------------------------------------


def version_of(path: Path) -> SchemaVersion:
    """1.1.5 when the flux carries `action`, 1.1.2 otherwise (read from the header only).

    The file's kind, size, encoding and DTD are checked first: a file refused there is
    checked against 1.1.2 and refused again, with the reason, by `inspect_file`.
    """
    try:
        with open_regular(path, max_bytes=MAX_FILE_BYTES, refuse=SchemaValidationError) as handle:
            head = handle.read(HEAD)
            if head_fault(head) is not None:
                return SchemaVersion.V1_1_2
            handle.seek(0)
            found = _version_from(handle)
            if found is None:
                found = _version_from_tail(handle)
            return found
    except (SchemaValidationError, OSError):
        return SchemaVersion.V1_1_2


HEADER_BYTES = 1 << 20
"""Where a flux's `emetteur` must begin: `flux`'s other children (`action`, 1.1.5, among
them) come before it, or after its end (`_version_from_tail`)."""
_PIECE = 4096


def _version_from(handle: BinaryIO) -> SchemaVersion | None:
    """Read in small pieces, and only the header's bytes: a syntax error further in the
    first piece hid the `action` already parsed (a 1.1.5 file was checked against 1.1.2,
    its real fault unsaid), and a file of millions of elements before any header was built
    into a tree (5 GB for 160 MB). None: `emetteur` begins with no `action` before it;
    `flux`'s children come in any order (`xsd:all`), so it may follow `emetteur`."""
    parser = etree.XMLPullParser(
        events=("start",), resolve_entities=False, no_network=True, load_dtd=False
    )
    read = 0
    try:
        while read < HEADER_BYTES and (piece := handle.read(_PIECE)):
            read += len(piece)
            parser.feed(piece)
            seen = _header_seen(parser)
            if seen == _ACTION:
                return SchemaVersion.V1_1_5
            if seen == _EMETTEUR:
                return None
    except etree.XMLSyntaxError:
        if _header_seen(parser) == _ACTION:
            return SchemaVersion.V1_1_5
    return SchemaVersion.V1_1_2


_ACTION = f"{{{NAMESPACE}}}action"
_EMETTEUR = f"{{{NAMESPACE}}}emetteur"


def _header_seen(parser: etree.XMLPullParser) -> str | None:
    """The `action` tag, or `emetteur`'s when it begins first; None: neither yet."""
    for _, element in parser.read_events():
        tag = getattr(element, "tag", None)
        if tag in (_ACTION, _EMETTEUR):
            return str(tag)
    return None


TAIL_BYTES = 64 * 1024
"""What follows `emetteur` in a flux: at most its `action` and its end tag."""
_EMETTEUR_END = re.compile(rb"</(?:[\w.-]+:)?emetteur\s*>")
_ACTION_TAG = re.compile(rb"<(?:[\w.-]+:)?action[\s/>]")
_COMMENT = re.compile(rb"<!--.*?-->", re.S)
"""A comment naming `<action>` after `emetteur` is none (a 1.1.2 file was read as 1.1.5)."""


def _version_from_tail(handle: BinaryIO) -> SchemaVersion:
    """1.1.5 when an `action` follows `emetteur`'s end (a file of another tool: ours put it
    first); the schema's check then judges the file whole."""
    size = handle.seek(0, 2)
    handle.seek(max(0, size - TAIL_BYTES))
    tail = _COMMENT.sub(b"", handle.read(TAIL_BYTES))
    ends = list(_EMETTEUR_END.finditer(tail))
    if ends and _ACTION_TAG.search(tail, ends[-1].end()):
        return SchemaVersion.V1_1_5
    return SchemaVersion.V1_1_2


def xsd_for_file(path: Path, version: SchemaVersion | None, override: Path | None) -> Path:
    """The XSD a file is checked against: `override`, or the bundled one of its version."""
    if override is not None:
        return schema_path(profile_for(SchemaVersion.V1_1_2), override)
    return schema_path(profile_for(version or version_of(path)))
