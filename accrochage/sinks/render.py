"""Streamed rendering of one frozen batch into one CDC `flux`.

Memory stays flat: passages arrive as an iterator; each is written as bytes
(`sinks/passage.py`) and dropped, or arrives as the bytes its decode process prepared
(`FluxPassage`). The envelope
around them is a handful of fixed tags. The same header and the same passages always give
the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

from accrochage.errors import RenderError
from accrochage.models.deadline import PARIS
from accrochage.models.event import DeliveredEvent
from accrochage.models.registry import Certifier, Emitter
from accrochage.models.vocabulary import CdcAction
from accrochage.sinks.passage import NS_DECLARATIONS, element, fragment, passage_bytes
from accrochage.sinks.profiles import SchemaProfile

XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


@dataclass(frozen=True, slots=True)
class FluxHeader:
    """What is frozen when a batch is cut, besides its members."""

    id_flux: str
    created_at: datetime
    emitter: Emitter
    certifier: Certifier
    profile: SchemaProfile
    action: CdcAction = CdcAction.CREATION
    """Written where the profile has `action` (1.1.5); a 1.1.2 flux can only create."""
    passage_profile: SchemaProfile | None = None
    """The schema the passages are written in, when not the flux's: a SUPPRESSION repeats
    passages as their CREATION file sent them (identity branch included)."""

    @property
    def passages_as(self) -> SchemaProfile:
        return self.passage_profile or self.profile

    @property
    def horodatage(self) -> str:
        return horodatage(self.created_at)


def horodatage(moment: datetime) -> str:
    """Europe/Paris wall time with its real offset, to the second (the CDC pattern wants it)."""
    if moment.tzinfo is None:
        raise RenderError("the batch timestamp must be timezone-aware")
    return moment.astimezone(PARIS).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class FluxPassage:
    """One passage ready to be written: its bytes, and the certification they go under."""

    code: str
    data: bytes

    @property
    def cert_type(self) -> str:
        """The code's prefix: a valid event's `certification.type` is its code's (rules)."""
        return "RNCP" if self.code.startswith("RNCP") else "RS"


def flux_passage(event: DeliveredEvent, profile: SchemaProfile) -> FluxPassage:
    return FluxPassage(event.certification.code, passage_bytes(event, profile))


@dataclass(frozen=True, slots=True)
class RenderStats:
    passages: int
    certifications: int
    bytes_written: int


def _open(name: str) -> bytes:
    return f"<cpf:{name}>".encode()


def _close(name: str) -> bytes:
    return f"</cpf:{name}>\n".encode()


def _leaf(name: str, value: str) -> bytes:
    return fragment(element(name, value))


def flux_head(header: FluxHeader) -> bytes:
    parts = [XML_DECLARATION, b"<cpf:flux" + NS_DECLARATIONS + b">\n"]
    parts += [_leaf("idFlux", header.id_flux), _leaf("horodatage", header.horodatage)]
    if header.profile.action is not None:
        parts.append(_leaf("action", header.action))
    parts += [b"\n", _open("emetteur"), _leaf("idClient", header.emitter.id_client)]
    parts += [b"\n", _open("certificateurs"), _open("certificateur")]
    parts += [_leaf("idClient", header.certifier.id_client)]
    parts += [_leaf("idContrat", header.certifier.id_contrat), b"\n", _open("certifications")]
    return b"".join(parts) + b"\n"


FLUX_TAIL = b"".join(
    _close(name)
    for name in ("certifications", "certificateur", "certificateurs", "emetteur", "flux")
)


def certification_head(header: FluxHeader, cert_type: str, code: str) -> bytes:
    parts = [_open("certification"), _leaf("type", cert_type), _leaf("code", code)]
    parts += [_leaf("natureDeposant", header.emitter.nature), b"\n"]
    return b"".join(parts) + _open("passageCertifications") + b"\n"


CERTIFICATION_TAIL = _close("passageCertifications") + _close("certification")


def render_flux(
    out: BinaryIO,
    header: FluxHeader,
    passages: Iterable[DeliveredEvent],
    *,
    max_bytes: int | None = None,
) -> RenderStats:
    """Write one flux of events; they must come grouped by certification code, in a stable
    order."""
    profile = header.passages_as
    rendered = (flux_passage(event, profile) for event in passages)
    return write_flux(out, header, rendered, max_bytes=max_bytes)


def write_flux(
    out: BinaryIO,
    header: FluxHeader,
    passages: Iterable[FluxPassage],
    *,
    max_bytes: int | None = None,
) -> RenderStats:
    """Write one flux; passages must come grouped by certification code, in a stable order."""
    written = out.write(flux_head(header))
    seen: set[str] = set()
    current: str | None = None
    count = 0
    for passage in passages:
        code = passage.code
        if code != current:
            if code in seen:
                raise RenderError(f"passages of {code} are not contiguous: sort them by code")
            if current is not None:
                written += out.write(CERTIFICATION_TAIL)
            seen.add(code)
            current = code
            written += out.write(certification_head(header, passage.cert_type, code))
        written += out.write(passage.data)
        count += 1
        if max_bytes is not None and written > max_bytes:
            raise RenderError(f"the file exceeds max_file_bytes ({max_bytes} bytes)")
    if count == 0:
        raise RenderError(f"batch {header.id_flux} has no passage: the CDC needs at least one")
    written += out.write(CERTIFICATION_TAIL + FLUX_TAIL)
    if max_bytes is not None and written > max_bytes:
        raise RenderError(f"the file exceeds max_file_bytes ({written} > {max_bytes} bytes)")
    return RenderStats(count, len(seen), written)


def envelope_bytes(header: FluxHeader, codes: int) -> int:
    """Bytes a file spends outside its passages, for cutting files within max_file_bytes."""
    per_code = len(certification_head(header, "RNCP", "RNCP" + "9" * 20)) + len(CERTIFICATION_TAIL)
    return len(flux_head(header)) + len(FLUX_TAIL) + codes * per_code
