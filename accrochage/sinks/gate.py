"""The XSD gate: a file is checked against the schema while it is read, with flat memory.

lxml validates as it parses and hands each element to a target that keeps no tree, so a
190 MB file costs no more memory than a small one. Every schema error is collected, each with
its line, its element and where it is (the header, a certification, or a passage named by its
`idTechnique`), and reduced to the rule it breaks: a message never quotes a value, so no name
or NIR reaches a log, the state or an HTTP answer through it (the streamed check itself:
`sinks/xsd_stream.py`).

Before lxml reads a byte, the file is refused if it is not a regular file, is above the CDC's
size limit, is not UTF-8 or declares another encoding, or declares a DTD. A DTD is the only
place entities are declared, so none can be expanded; and lxml 6 with libxml2 2.14 crashes
(SIGSEGV) when an entity is substituted while a schema validates the parse, so no document
with a DTD may ever reach the validating parser.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from lxml import etree

from accrochage.errors import SchemaValidationError
from accrochage.sinks.faults import CheckResult, Fault, FileCheck, too_many_passages
from accrochage.sinks.prolog import HEAD, head_fault
from accrochage.sinks.regular import open_regular
from accrochage.sinks.schemas import MAX_FILE_BYTES, load_schema
from accrochage.sinks.xsd_stream import PASSAGE_TAG
from accrochage.sinks.xsd_stream import parse as _parse

TREE_MAX_BYTES = 4_000_000
"""A file up to this size is first parsed whole and validated as a tree: half the CPU of the
streamed check (12 against 25 ms for a file of 1,000 passages), for about five times the
file's size in memory. Only a valid file is decided there; any other is checked again,
streamed, which names every fault. Larger files (up to the CDC's 200 MB) only stream, in
flat memory."""


def _valid_passages(handle: BinaryIO, schema: etree.XMLSchema) -> int | None:
    """The passages of a document that parses and is valid, or None (see `TREE_MAX_BYTES`).

    Called only once the file's head has been checked: no DTD, so no entity, reaches lxml."""
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        document = etree.parse(handle, parser)
    except etree.XMLSyntaxError:
        return None
    if not schema.validate(document):
        return None
    return sum(1 for _ in document.getroot().iter(PASSAGE_TAG))


def inspect_file(path: Path, xsd: Path) -> FileCheck:
    """Check one file against `xsd`; every fault is in the answer, nothing is raised for it.

    A small file is validated whole first (`TREE_MAX_BYTES`). Otherwise, and for any file
    that fails there, the file is fed line by line (at most 64 KiB at a time): a rendered
    flux holds one passage per line, a pretty-printed one an element per line, so each fault
    carries its line.
    """
    schema = load_schema(xsd)
    try:
        with open_regular(path, max_bytes=MAX_FILE_BYTES, refuse=SchemaValidationError) as handle:
            fault = head_fault(handle.read(HEAD))
            if fault is not None:
                return FileCheck(path, xsd, 0, (fault,))
            if os.fstat(handle.fileno()).st_size <= TREE_MAX_BYTES:
                handle.seek(0)
                passages = _valid_passages(handle, schema)
                if passages is not None:
                    return FileCheck(path, xsd, passages, too_many_passages(passages))
            handle.seek(0)
            checker = _parse(handle, schema)
    except SchemaValidationError as exc:
        return FileCheck(path, xsd, 0, (Fault(f"the file {exc}"),), read=False)
    except OSError as exc:
        fault = Fault(f"the file cannot be read ({exc.strerror})")
        return FileCheck(path, xsd, 0, (fault,), read=False)
    faults = checker.faults
    if checker.more:
        faults.append(Fault(f"and {checker.more} more schema error(s), not listed"))
    if not faults and not checker.where.closed:
        faults.append(Fault("the document ends before </cpf:flux> (truncated?)"))
    faults.extend(too_many_passages(checker.where.passages))
    return FileCheck(path, xsd, checker.where.passages, tuple(faults))


def check_file(path: Path, xsd: Path) -> CheckResult:
    """Validate `path` against `xsd` while streaming; raise with every fault (the first 20)."""
    result = inspect_file(path, xsd)
    if not result.ok:
        raise SchemaValidationError(result.message())
    return CheckResult(path, result.passages, xsd)
