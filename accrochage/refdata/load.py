"""Loading the files named in `[refdata]` into the state, and saying what is loaded.

Files are parsed before any write; rows go to staging tables in short transactions and are
swapped in at once. A kind whose files did not change since the last load is left alone
unless `force` is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from accrochage.errors import RefdataError
from accrochage.models.reference import Period
from accrochage.refdata.cog import load_cog
from accrochage.refdata.france_competences import load_export
from accrochage.refdata.sources import signature
from accrochage.state.base import RefdataSource, RefdataStorage

RULES: tuple[tuple[str, str, str], ...] = (
    ("the code is not in the RNCP/RS export", "rncp", "fiches"),
    ("delivered_on after DATE_LIMITE_DELIVRANCE", "rncp", "delivery_limits"),
    ("delivered_on after Date_Fin_Enregistrement", "rncp", "fiches"),
    ("the code is replaced by a newer one", "rncp", "fiches"),
    ("certifiers[].siret not among the fiche's certifiers", "rncp", "fiches"),
    ("a birth commune code that did not exist on the birth date", "cog", "communes"),
    ("a foreign-country code unknown to the COG", "cog", "countries"),
)
"""Each rule of CONTRACT §11, the reference it needs, and the part of it."""


@dataclass(frozen=True, slots=True)
class Loaded:
    kind: str
    path: Path
    changed: bool
    source: RefdataSource | None


@dataclass(slots=True)
class LoadReport:
    loaded: list[Loaded] = field(default_factory=list)
    version: int = 0

    @property
    def changed(self) -> bool:
        return any(item.changed for item in self.loaded)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


LOAD_WAIT_SECONDS = 300.0
"""How long `refdata load` waits for another process's load (a large export takes a minute)."""


def load_refdata(
    storage: RefdataStorage,
    rncp: Path | None,
    cog: Path | None,
    *,
    force: bool = False,
    wait_seconds: float = LOAD_WAIT_SECONDS,
) -> LoadReport:
    """Load whichever of the two references is configured and changed on disk, one load at a
    time (`RefdataBusy` after `wait_seconds`): what is stored is read once the turn came, so
    files another process has just loaded are not loaded twice."""
    with storage.loading(wait_seconds):
        return _load(storage, rncp, cog, force)


def _load(storage: RefdataStorage, rncp: Path | None, cog: Path | None, force: bool) -> LoadReport:
    report = LoadReport()
    stored = {s.kind: s for s in storage.sources()}
    for kind, path in (("rncp", rncp), ("cog", cog)):
        if path is None:
            continue
        sign = signature(path)
        previous = stored.get(kind)
        if not force and previous is not None and previous.signature == sign:
            report.loaded.append(Loaded(kind, path, False, previous))
            continue
        loader = _load_rncp if kind == "rncp" else _load_cog
        source = loader(storage, path, sign, _Shrink(previous, allowed=force))
        report.loaded.append(Loaded(kind, path, True, source))
    report.version = storage.version()
    return report


SHRINK_REFUSED = 0.5
"""A load that would keep less than this share of what is loaded (fiches, communes,
countries) is refused unless forced: a file cut short (a copy still under way, a download
that stopped at a line's end) reads as a valid, smaller export, and every code or commune
it lost would be refused or warned about until the next load."""


@dataclass(frozen=True, slots=True)
class _Shrink:
    previous: RefdataSource | None
    allowed: bool

    def check(self, path: Path, counts: dict[str, int], parts: tuple[str, ...]) -> None:
        if self.allowed or self.previous is None:
            return
        for part in parts:
            before, after = self.previous.counts.get(part, 0), counts.get(part, 0)
            if before and after < before * SHRINK_REFUSED:
                raise RefdataError(
                    f"{path} lists {after} {part} where the data loaded lists {before}: a file "
                    "cut short (a copy still under way?); the loaded data stays in use. If the "
                    "files are whole, load them with `accrochage refdata load --force`"
                )


def _load_rncp(storage: RefdataStorage, path: Path, sign: str, shrink: _Shrink) -> RefdataSource:
    export = load_export(path)
    counts = {
        "fiches": len(export.fiches),
        "certifiers": sum(len(f.sirets) for f in export.fiches),
        "replaced": sum(1 for f in export.fiches if f.replaced_by),
    }
    shrink.check(path, counts, ("fiches",))
    storage.stage("rncp")
    storage.stage_fiches(export.fiches)
    parts = sorted(export.kinds) + (["delivery_limits"] if export.delivery_limits else [])
    source = RefdataSource(
        kind="rncp",
        day=export.day,
        vintage=None,
        files=tuple(export.files),
        signature=sign,
        loaded_at=_now(),
        counts=counts,
        parts=tuple(parts),
    )
    storage.swap(source)
    return source


def _load_cog(storage: RefdataStorage, path: Path, sign: str, shrink: _Shrink) -> RefdataSource:
    cog = load_cog(path)
    counts = {
        "communes": len({c.code for c in cog.communes}),
        "moves": len(cog.moves),
        "countries": len(cog.countries),
    }
    shrink.check(path, counts, ("communes", "countries"))
    storage.stage("cog")
    storage.stage_communes((c.code, Period(c.start, c.end)) for c in cog.communes)
    storage.stage_moves(cog.moves)
    storage.stage_countries(cog.countries)
    parts = [
        name
        for name, present in (
            ("communes", bool(cog.communes)),
            ("moves", bool(cog.moves)),
            ("countries", bool(cog.countries)),
        )
        if present
    ]
    source = RefdataSource(
        kind="cog",
        day=None,
        vintage=cog.vintage,
        files=tuple(cog.files),
        signature=sign,
        loaded_at=_now(),
        counts=counts,
        parts=tuple(parts),
    )
    storage.swap(source)
    return source


def source_warnings(sources: list[RefdataSource], today: date, max_age: timedelta) -> list[str]:
    """Reference data too old to trust (CONTRACT §11), or covering one kind of fiche only:
    never a problem on an event."""
    warnings = []
    for source in sources:
        if source.kind == "rncp":
            warnings += _coverage_warnings(source)
            if source.day is None:
                warnings.append(
                    "the RNCP/RS export's date is unknown (its file names carry none): "
                    "download the export again from data.gouv.fr"
                )
            elif today - source.day > max_age:
                warnings.append(
                    f"the RNCP/RS export is of {source.day}, {(today - source.day).days} days "
                    f"old (refdata.max_age is {max_age.days}d): download today's from "
                    "data.gouv.fr and run `accrochage refdata load`"
                )
        elif source.kind == "cog":
            warnings += _cog_age(source.vintage, today)
    return warnings


def _cog_age(vintage: int | None, today: date) -> list[str]:
    fix = "download the current one from insee.fr and run `accrochage refdata load`"
    if vintage is None:
        return [f"the COG's year is unknown (no file name nor change carries one): {fix}"]
    if vintage < today.year - 1:
        return [f"the COG is of {vintage}, older than last year's: {fix}"]
    return []


def _coverage_warnings(source: RefdataSource) -> list[str]:
    missing = [kind for kind in ("RNCP", "RS") if kind not in source.parts]
    if len(missing) != 1:
        return []
    (kind,) = missing
    return [
        f"the RNCP/RS export loaded lists no {kind} fiche: {kind} codes are not checked; add "
        f"export_fiches_{kind}_V4_1_DATE.xml beside the other XML file (or use the CSV export) "
        "and run `accrochage refdata load`"
    ]


def status(storage: RefdataStorage, today: date, max_age: timedelta) -> dict[str, Any]:
    """What is loaded, from which files and dates, which rules apply, what is too old."""
    sources = storage.sources()
    by_kind = {s.kind: s for s in sources}
    rules = []
    for rule, kind, part in RULES:
        source = by_kind.get(kind)
        applied = source is not None and (
            part in source.parts or (part == "fiches" and bool({"RNCP", "RS"} & set(source.parts)))
        )
        rules.append({"rule": rule, "applied": applied, "needs": f"{kind}:{part}"})
    return {
        "version": storage.version(),
        "sources": [
            {
                "kind": s.kind,
                "date": s.day.isoformat() if s.day else None,
                "vintage": s.vintage,
                "age_days": (today - s.day).days if s.day else None,
                "files": list(s.files),
                "loaded_at": s.loaded_at.isoformat(),
                "counts": s.counts,
                "parts": list(s.parts),
            }
            for s in sources
        ],
        "rules": rules,
        "warnings": source_warnings(sources, today, max_age),
    }
