"""The XSD gate: a file is checked against the schema while it is read, with flat memory.

lxml's `iterparse(schema=...)` validates as it parses; each finished passage is dropped from
the tree, so a 190 MB file costs no more memory than a small one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from lxml import etree

from accrochage.errors import ConfigError, SchemaValidationError
from accrochage.sinks.profiles import NAMESPACE, SchemaProfile

_PASSAGE = f"{{{NAMESPACE}}}passageCertification"
_ID = f"{{{NAMESPACE}}}idTechnique"


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
    """Validate `path` against `xsd` while streaming; raise on the first fault."""
    schema = load_schema(xsd)
    passages = 0
    last_id: str | None = None
    try:
        for _, element in etree.iterparse(
            str(path),
            events=("end",),
            tag=(_PASSAGE, _ID),
            schema=schema,
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
        ):
            if element.tag == _ID:
                last_id = element.text
                continue
            passages += 1
            element.clear(keep_tail=True)
            parent = element.getparent()
            while parent is not None and element.getprevious() is not None:
                del parent[0]
    except etree.XMLSyntaxError as exc:
        raise SchemaValidationError(
            f"{path}: {exc.msg}; {_where(passages, last_id)} (checked against {xsd})"
        ) from None
    except OSError as exc:
        raise SchemaValidationError(f"{path}: cannot be read: {exc}") from None
    return CheckResult(path, passages, xsd)


def _where(passages: int, last_id: str | None) -> str:
    """Streaming validation has no line numbers: say which passage it was in."""
    if last_id is None:
        return "before the first passage"
    return f"in or after passage {passages + 1} (last idTechnique read: {last_id})"
