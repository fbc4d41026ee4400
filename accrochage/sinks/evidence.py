"""One record's passage as a batch file holds it, for `accrochage evidence`.

A file can hold hundreds of thousands of passages (200 MB): it is read once, streamed through
`iterparse`, each passage dropped once looked at, so memory stays flat whatever the size. The
file's bytes are hashed as they are read, so the answer also says whether the file is still
the one released (its recorded sha256).

The passage is re-serialised by lxml: the same elements, text and namespace as in the file
(an XML-equivalent copy; the comment before it names the file, its line, its sha256, the batch
and its action, so that anyone can go back to the bytes).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from lxml import etree

from accrochage.errors import AccrochageError
from accrochage.sinks.profiles import NAMESPACE

PASSAGE = f"{{{NAMESPACE}}}passageCertification"
ID_TECHNIQUE = f"{{{NAMESPACE}}}idTechnique"
CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class FoundPassage:
    """What one reading of a batch file gave."""

    passage: bytes | None
    """The record's `passageCertification`, alone (no XML declaration); None: not in the file."""
    line: int | None
    """Its line in the file."""
    sha256: str
    """The digest of the whole file as read now."""


class _Hashing:
    """A binary reader that hashes what goes through it (iterparse reads from it)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self.digest.update(data)
        return data

    def drain(self) -> None:
        while data := self.read(CHUNK):
            del data


def find_passage(path: Path, record_id: str) -> FoundPassage:
    """The passage whose `idTechnique` is `record_id` in the file at `path`, streamed.

    Raises `AccrochageError` when the file is not well-formed XML, `OSError` when it cannot
    be read. DTDs, entities and network access are never followed.
    """
    with path.open("rb") as stream:
        source = _Hashing(stream)
        found: bytes | None = None
        line: int | None = None
        try:
            for _, element in etree.iterparse(
                source,
                events=("end",),
                tag=PASSAGE,
                resolve_entities=False,
                load_dtd=False,
                no_network=True,
                huge_tree=False,
            ):
                if element.findtext(ID_TECHNIQUE) == record_id:
                    line = element.sourceline
                    found = etree.tostring(element, encoding="UTF-8", with_tail=False)
                    break
                element.clear(keep_tail=True)
                while element.getprevious() is not None:
                    parent = element.getparent()
                    assert parent is not None
                    del parent[0]
        except etree.XMLSyntaxError as exc:
            raise AccrochageError(f"{path.name} is not well-formed XML: {exc}") from None
        source.drain()
    return FoundPassage(found, line, source.digest.hexdigest())


def passage_document(passage: bytes, about: Mapping[str, str]) -> bytes:
    """A standalone XML document: a comment saying where the passage comes from (`about`,
    one `key: value` line each), then the passage as the root, its namespace kept."""
    parser = etree.XMLParser(resolve_entities=False, load_dtd=False, no_network=True)
    root = copy.deepcopy(etree.fromstring(passage, parser))
    lines = ["accrochage evidence: a passageCertification as its batch file holds it"]
    lines += [f"{key}: {value}" for key, value in about.items()]
    text = "\n  ".join(_comment_safe(line) for line in lines)
    root.addprevious(etree.Comment(f"\n  {text}\n"))
    document: bytes = etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")
    return document + b"\n"


def _comment_safe(text: str) -> str:
    """An XML comment holds no `--` and does not end with `-`."""
    while "--" in text:
        text = text.replace("--", "- -")
    return text.rstrip("-")
