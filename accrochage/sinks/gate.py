"""The XSD gate: a file is checked against the schema while it is read, with flat memory.

lxml's pull parser validates as it parses; each finished passage is dropped from the tree,
so a 190 MB file costs no more memory than a small one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from lxml import etree

from accrochage.errors import ConfigError, SchemaValidationError
from accrochage.sinks.profiles import NAMESPACE, SchemaProfile

_PASSAGE = f"{{{NAMESPACE}}}passageCertification"
_ID = f"{{{NAMESPACE}}}idTechnique"
_FLUX = f"{{{NAMESPACE}}}flux"
_CHUNK = 1 << 16


@dataclass(frozen=True, slots=True)
class CheckResult:
    path: Path
    passages: int
    schema: Path


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


def check_file(path: Path, xsd: Path) -> CheckResult:
    """Validate `path` against `xsd` while streaming; raise on the first fault.

    The file is fed line by line (at most 64 KiB at a time): a rendered flux holds one passage
    per line, so a schema error is seen right after the passage that holds it, and named.
    """
    schema = load_schema(xsd)
    parser = etree.XMLPullParser(
        events=("end",),
        tag=(_FLUX, _PASSAGE, _ID),
        schema=schema,
        # not False: with a schema, lxml then drops fatal parse errors (a truncated file
        # passed); "internal" still never resolves an external entity.
        resolve_entities="internal",  # type: ignore[arg-type]  # lxml-stubs predate lxml 5
        no_network=True,
        load_dtd=False,
    )
    seen = _Seen()
    try:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.readline(_CHUNK), b""):
                parser.feed(chunk)
                seen.read(parser)
                errors = parser.feed_error_log.filter_from_errors()
                if errors:
                    raise SchemaValidationError(
                        f"{path}: {errors[0].message}; {seen.where()} (checked against {xsd})"
                    )
            parser.close()
            seen.read(parser)
    except etree.XMLSyntaxError as exc:
        raise SchemaValidationError(
            f"{path}: {exc.msg}; {seen.where()} (checked against {xsd})"
        ) from None
    except OSError as exc:
        raise SchemaValidationError(f"{path}: cannot be read: {exc}") from None
    if not seen.closed:
        raise SchemaValidationError(
            f"{path}: the document ends before </cpf:flux> (truncated?); {seen.where()} "
            f"(checked against {xsd})"
        )
    return CheckResult(path, seen.passages, xsd)


class _Seen:
    """How far the streamed parse got: passages done, the last idTechnique, the root's end."""

    def __init__(self) -> None:
        self.passages = 0
        self.ids = 0
        self.last_id: str | None = None
        self.closed = False

    def read(self, parser: etree.XMLPullParser) -> None:
        for _, item in parser.read_events():
            element: Any = item  # "end" events carry elements (the stubs lack keep_tail)
            if element.tag == _ID:
                self.ids += 1
                self.last_id = element.text
            elif element.tag == _FLUX:
                self.closed = True
            else:
                self.passages += 1
                element.clear(keep_tail=True)
                parent = element.getparent()
                while parent is not None and element.getprevious() is not None:
                    del parent[0]

    def where(self) -> str:
        return _where(self.ids, self.last_id)


def _where(ids: int, last_id: str | None) -> str:
    """Schema errors carry no line number when streamed: say which passage it was in."""
    if last_id is None:
        return "before the first passage"
    return f"in or after passage {ids} (idTechnique {last_id})"
