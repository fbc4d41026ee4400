"""INSEE's Code officiel géographique: communes since 1943, their changes, countries.

Files are found by name in a folder (or a zip such as `cog_ensemble_AAAA_csv.zip`):
`v_commune_depuis_1943.csv` (required for the commune rule), `v_mvt_commune_AAAA.csv`
(optional: it names what a code was or became), `v_pays_territoire_AAAA.csv` or
`v_pays_et_territoire_depuis_1943.csv` (required for the country rule). Quoted or not, LF
or CRLF, with or without a BOM; columns are found by name (the 1943 file lost a column in
2025).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from accrochage.errors import RefdataError
from accrochage.models.reference import Move
from accrochage.refdata.sources import Source, sources
from accrochage.refdata.tables import day, rows

_COMMUNES = re.compile(r"v_commune_depuis_1943(_\d{4})?\.csv", re.IGNORECASE)
_MOVES = re.compile(r"(v_mvt_commune_(?P<year>\d{4})|mouvements-communes)\.csv", re.IGNORECASE)
_COUNTRIES = re.compile(
    r"v_pays_(territoire_(?P<year>\d{4})|et_territoire_depuis_1943(_\d{4})?)\.csv", re.IGNORECASE
)
_YEAR = re.compile(r"(\d{4})")


@dataclass(frozen=True, slots=True)
class Commune:
    code: str
    start: date
    end: date | None


@dataclass(frozen=True, slots=True)
class Cog:
    communes: list[Commune]
    moves: list[Move]
    countries: set[str]
    vintage: int | None
    """The COG's year (from the file names, else the newest date in its history)."""
    files: list[str]


def _pick(found: list[Source], pattern: re.Pattern[str]) -> Source | None:
    """The newest file of a kind, by the year in its name. Two files of the newest name (a
    loose one beside a zip holding another) cannot be told apart: an older zip left beside a
    newer file won, and the rules ran on the older COG. Refused, naming both."""
    matching = [s for s in found if pattern.fullmatch(s.name)]
    if not matching:
        return None
    newest = max(matching, key=lambda s: s.name)
    copies = sorted({s.origin for s in matching if s.name == newest.name})
    if len(copies) > 1:
        raise RefdataError(
            f"{newest.name} is there twice ({' and '.join(copies)}): which is newer cannot be "
            "told; keep one of them in the COG folder, then load again"
        )
    return newest


def _name(source: Source) -> str:
    return source.name


def load_cog(path: Path) -> Cog:
    """The COG's files at `path`; every countries file there is read: the current list
    (`v_pays_territoire_AAAA`) lacks the former states the historical one
    (`v_pays_et_territoire_depuis_1943`) keeps, and people were born in them."""
    found = sources(path)
    communes_file = _pick(found, _COMMUNES)
    moves_file = _pick(found, _MOVES)
    countries_files = sorted((s for s in found if _COUNTRIES.fullmatch(s.name)), key=_name)
    if communes_file is None and not countries_files:
        raise RefdataError(
            f"{path} holds no COG file: expected v_commune_depuis_1943.csv and/or "
            "v_pays_territoire_AAAA.csv (with v_mvt_commune_AAAA.csv), from insee.fr"
        )
    communes = _communes(communes_file) if communes_file else []
    moves = _moves(moves_file) if moves_file else []
    countries = {code for source in countries_files for code in _countries(source)}
    used = [s for s in (communes_file, moves_file) if s is not None] + countries_files
    return Cog(
        communes,
        moves,
        countries,
        _vintage(used, communes, moves),
        sorted(s.name if s.origin == s.name else f"{s.origin}:{s.name}" for s in used),
    )


def _communes(source: Source) -> list[Commune]:
    found = []
    for row in rows(source.read(), source.name, ("COM", "DATE_DEBUT", "DATE_FIN")):
        start = day(row["DATE_DEBUT"], source.name, "DATE_DEBUT")
        if not row["COM"] or start is None:
            continue
        found.append(Commune(row["COM"], start, day(row["DATE_FIN"], source.name, "DATE_FIN")))
    return found


def _moves(source: Source) -> list[Move]:
    found = []
    for row in rows(source.read(), source.name, ("DATE_EFF", "COM_AV", "COM_AP")):
        when = day(row["DATE_EFF"], source.name, "DATE_EFF")
        if when is not None and row["COM_AV"] and row["COM_AP"]:
            found.append(Move(when, row["COM_AV"], row["COM_AP"]))
    return found


def _countries(source: Source) -> set[str]:
    return {row["COG"] for row in rows(source.read(), source.name, ("COG",)) if row["COG"]}


def _vintage(used: list[Source], communes: list[Commune], moves: list[Move]) -> int | None:
    years = [
        int(m.group(1))
        for s in used
        for m in [_YEAR.search(s.name.replace("1943", ""))]
        if m is not None
    ]
    if years:
        return max(years)
    days = [c.start for c in communes] + [c.end for c in communes if c.end] + [m.day for m in moves]
    return max(days).year if days else None
