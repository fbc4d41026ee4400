"""Before lxml reads a byte: the file's encoding and any DTD, found in its opening bytes.

A DTD is the only place entities are declared, so refusing it refuses every entity; lxml 6
with libxml2 2.14 crashes when an entity is substituted while a schema validates the parse.
"""

from __future__ import annotations

import re

from accrochage.sinks.faults import Fault

HEAD = 1 << 16
"""What the prolog (declaration, comments, DOCTYPE) may take before the root element."""

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
    too_long = Fault(f"more than {HEAD} bytes precede the root element: refused", first_line)
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


def head_fault(head: bytes) -> Fault | None:
    """The encoding and the DTD, from the first bytes of the file."""
    fault, prolog = _encoding_fault(head)
    if fault is not None:
        return fault
    first_line = 1 + head[: len(head) - len(prolog)].count(b"\n")
    return _dtd_fault(prolog, first_line, complete=len(head) < HEAD)
