"""Reference files for the tests, built from the real excerpts in `../shared/refdata/`.

The excerpts are read in place (never copied into the project); bigger or edge-case files
are written into the test's temporary folder in the same formats (FORMATS.md).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, require

CSV_DAY = "2024_02_22"
CSV_PARTS = (
    "Standard",
    "Certificateurs",
    "Partenaires",
    "Blocs_De_Compétences",
    "CCN",
    "Nsf",
    "Formacode",
    "Ancienne_Nouvelle_Certification",
    "VoixdAccès",
    "Rome",
)


def refdata_root() -> Path:
    import os

    configured = os.environ.get("ACCROCHAGE_SHARED")
    return (Path(configured) if configured else ROOT.parent / "shared") / "refdata"


@pytest.fixture(scope="session")
def refdata_dir() -> Path:
    path = refdata_root()
    found = (path / "france-competences" / "export-fiches-csv-2024-02-22.zip").is_file()
    require(found, f"reference data excerpts not found at {path}")
    return path


def fc(refdata_dir: Path) -> Path:
    return refdata_dir / "france-competences"


def cog(refdata_dir: Path) -> Path:
    return refdata_dir / "insee-cog"


UNIDENTIFIED_ROW = '"RS5000";"";"UN CERTIFICATEUR SANS SIRET"\r\n'
"""A certifier row without a SIRET, as about a third of the export's certifiers are."""


def csv_part(refdata_dir: Path, part: str) -> bytes:
    return (fc(refdata_dir) / f"export_fiches_CSV_{part}_{CSV_DAY}.csv").read_bytes()


def write_zip(path: Path, entries: dict[str, bytes], *, utf8_flag: bool = True) -> Path:
    """A zip of these entries; `utf8_flag=False` stores accented names as raw UTF-8 bytes
    without the flag, as the real fixture does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    if not utf8_flag:  # zipfile sets bit 11 for non-ASCII names: clear it in both headers
        raw = bytearray(path.read_bytes())
        for signature, offset in ((b"PK\x03\x04", 7), (b"PK\x01\x02", 9)):
            start = 0
            while (found := raw.find(signature, start)) >= 0:
                raw[found + offset] &= ~0x08
                start = found + 4
        path.write_bytes(bytes(raw))
    return path


def csv_export(
    directory: Path,
    *,
    zip_day: str = "2024-02-22",
    parts: dict[str, bytes] | None = None,
    utf8_flag: bool = True,
) -> Path:
    """An export-fiches-csv zip of the real CSV parts (some replaced by `parts`)."""
    source = refdata_root() / "france-competences"
    entries = {}
    for part in CSV_PARTS:
        name = f"export_fiches_CSV_{part}_{CSV_DAY}.csv"
        data = (parts or {}).get(part)
        entries[name] = data if data is not None else (source / name).read_bytes()
    directory.mkdir(parents=True, exist_ok=True)
    return write_zip(directory / f"export-fiches-csv-{zip_day}.zip", entries, utf8_flag=utf8_flag)


def xml_fiche(
    code: str,
    *,
    end: str,
    active: str = "Oui",
    limit: str | None = None,
    certifiers: tuple[str | None, ...] = (),
    newer: tuple[str, ...] = (),
    older: tuple[str, ...] = (),
    jury_active: str = "Oui",
) -> str:
    """One FICHE in the element order the real export uses (FORMATS.md §1.3)."""
    parts = ["  <FICHE>", "    <ID_FICHE>1</ID_FICHE>", f"    <NUMERO_FICHE>{code}</NUMERO_FICHE>"]
    if newer:
        parts.append("    <NOUVELLES_CERTIFICATIONS>")
        parts += [
            "<NOUVELLE_CERTIFICATION><ID_FICHE_NOUVELLE_CERTIFICATION>"
            f"{n}</ID_FICHE_NOUVELLE_CERTIFICATION></NOUVELLE_CERTIFICATION>"
            for n in newer
        ]
        parts.append("    </NOUVELLES_CERTIFICATIONS>")
    if older:
        parts.append("    <ANCIENNES_CERTIFICATIONS>")
        parts += [
            "<ANCIENNE_CERTIFICATION><ID_FICHE_ANCIENNE_CERTIFICATION>"
            f"{o}</ID_FICHE_ANCIENNE_CERTIFICATION></ANCIENNE_CERTIFICATION>"
            for o in older
        ]
        parts.append("    </ANCIENNES_CERTIFICATIONS>")
    parts.append("    <INTITULE><![CDATA[Un intitulé d'exemple & <test>]]></INTITULE>")
    parts.append("    <CERTIFICATEURS>")
    for siret in certifiers:
        parts.append("      <CERTIFICATEUR>")
        if siret is not None:
            parts.append(f"        <SIRET_CERTIFICATEUR>{siret}</SIRET_CERTIFICATEUR>")
        parts.append("        <NOM_CERTIFICATEUR>SNVEL</NOM_CERTIFICATEUR>")
        parts.append("        <ETAT_CERTIFICATEUR>Actif</ETAT_CERTIFICATEUR>")
        parts.append("      </CERTIFICATEUR>")
    parts.append("    </CERTIFICATEURS>")
    parts.append(f"    <SI_JURY_FI><ACTIF>{jury_active}</ACTIF></SI_JURY_FI>")
    parts.append(f"    <DATE_FIN_ENREGISTREMENT>{end}</DATE_FIN_ENREGISTREMENT>")
    parts.append(f"    <ACTIF>{active}</ACTIF>")
    if limit is not None:
        parts.append(f"    <DATE_LIMITE_DELIVRANCE>{limit}</DATE_LIMITE_DELIVRANCE>")
    parts.append("  </FICHE>")
    return "\n".join(parts)


def xml_export(fiches: list[str]) -> bytes:
    head = '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n<FICHES>\n'
    head += "  <VERSION_FLUX>4.1</VERSION_FLUX>\n"
    return (head + "\n".join(fiches) + "\n</FICHES>\n").encode("utf-8")


CORSICA_1943 = '"COM","20004","1","AJACCIO","Ajaccio","Ajaccio","1943-01-01","1976-01-01"\n'
"""The real 1943 file's line for Ajaccio before 1976 (left out of the transcribed excerpt)."""


def cog_folder(directory: Path, *, countries: bool = True, corsica: bool = True) -> Path:
    """A COG folder: the real commune history and changes, plus a country file."""
    source = refdata_root() / "insee-cog"
    directory.mkdir(parents=True, exist_ok=True)
    history = (source / "v_commune_depuis_1943.csv").read_text(encoding="utf-8")
    if corsica:
        history += CORSICA_1943
    (directory / "v_commune_depuis_1943.csv").write_text(history, encoding="utf-8")
    (directory / "v_mvt_commune_2025.csv").write_bytes(
        (source / "v_mvt_commune_2025.csv").read_bytes()
    )
    if countries:
        (directory / "v_pays_territoire_2025.csv").write_text(countries_file(), encoding="utf-8")
    return directory


def countries_file() -> str:
    """v_pays_territoire in its insee.fr layout, with the real values of the derived copy."""
    import csv
    import io

    source = refdata_root() / "insee-cog" / "derived" / "cog-countries@2025.csv"
    reader = csv.DictReader(io.StringIO(source.read_text(encoding="utf-8")))
    header = ["COG", "ACTUAL", "CRPAY", "ANI", "LIBCOG", "LIBENR", "CODEISO2", "CODEISO3"]
    header.append("CODENUM3")
    lines = [",".join(f'"{h}"' for h in header)]
    for row in reader:
        values = [
            row["code"],
            row["actual_id"],
            row["parent_code"],
            "",
            row["name"],
            row["official_name"],
            row["iso2_code"],
            row["iso3_code"],
            row["num3_code"],
        ]
        lines.append(",".join(f'"{v}"' for v in values))
    return "\n".join(lines) + "\n"
