"""Reference data: loading an export the size of the real one, and validation with it.

    python -m bench.refdata [--fiches N] [--events N] [--quick] [--json] [--profile]

(a) A synthetic France compétences export (the CSV zip, and the RNCP/RS XML files) of about
30,000 fiches and 100,000 certifier rows, and a synthetic COG (about 40,000 communes since
1943, their changes, the countries), in the formats of ../shared/refdata/FORMATS.md, are
loaded into a fresh state (`load_refdata`: parse, staging tables, swap), each load in a fresh
interpreter for its peak RSS. Baseline: the same files only parsed (csv.reader over every
line, lxml iterparse over every FICHE), without the state. Targets: <= 60 s, <= 300 MB.
(b) `decode()` of N generated events with the loaded reference data vs without, in CPU
seconds, best of 5 interleaved passes each. Target: <= 10 % slower.
"""

from __future__ import annotations

import csv
import gc
import io
import random
import time
import zipfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from accrochage.generate import FOREIGN_PLACES, FRENCH_PLACES
from accrochage.models.decode import decode
from accrochage.models.reference import Reference
from bench._common import (
    CERTIFIERS,
    Report,
    at_most,
    base_parser,
    cpu_seconds,
    emit_result,
    finish,
    info,
    maybe_profile,
    paris_today,
    registry,
    run_scenario,
    scratch_dir,
)
from bench.validation import make_lines

TARGET_LOAD_S = 60.0
TARGET_LOAD_MB = 300.0
TARGET_SLOWDOWN = 1.10
STANDARD = (
    "Id_Fiche;Numero_Fiche;Intitule;Abrege_Libelle;Abrege_Intitule;Nomenclature_Europe_Niveau;"
    "Nomenclature_Europe_Intitule;Accessible_Nouvelle_Caledonie;Accessible_Polynesie_Francaise;"
    "Date_dernier_jo;Date_Decision;Date_Fin_Enregistrement;Date_Effet;Type_Enregistrement;"
    "Validation_Partielle;Actif"
)
OTHER_PARTS = {
    "Partenaires": "Numero_Fiche;Nom_Partenaire;Siret_Partenaire;Habilitation_Partenaire",
    "Blocs_De_Compétences": "Numero_Fiche;Bloc_Competences_Code;Bloc_Competences_Libelle",
    "CCN": "Numero_Fiche;Ccn_1_Numero;Ccn_1_Libelle;Ccn_2_Numero;Ccn_2_Libelle;Ccn_3_Numero;"
    "Ccn_3_Libelle",
    "Nsf": "Numero_Fiche;Nsf_Code;Nsf_Intitule",
    "Formacode": "Numero_Fiche;Formacode_Code;Formacode_Libelle",
    "VoixdAccès": "Numero_Fiche;Si_Jury",
    "Rome": "Numero_Fiche;Codes_Rome_Code;Codes_Rome_Libelle",
}
FILLER = "Activités visées : organiser, conduire et évaluer des projets. " * 25
"""About 1.6 kB of text per FICHE in the XML, as the real fiches carry long descriptions."""


def _quoted(values: list[str]) -> str:
    return ";".join(f'"{v}"' if v else "" for v in values)


def _codes(count: int) -> list[str]:
    known = sorted({code for c in CERTIFIERS for code in c.certifications})
    rs = [f"RS{5000 + i}" for i in range(count // 3)]
    rncp = [f"RNCP{30000 + i}" for i in range(count - len(rs))]
    return known + [c for c in rs + rncp if c not in known][: count - len(known)]


def _fr(day: date) -> str:
    return day.strftime("%d/%m/%Y")


def write_export(folder: Path, fiches: int, seed: int = 7) -> tuple[Path, Path]:
    """(the CSV zip, a folder with the two XML files) of `fiches` fiches, ~3.3 certifiers each."""
    rng = random.Random(seed)
    codes = _codes(fiches)
    delivered = {code for c in CERTIFIERS for code in c.certifications}
    stamp = "2026_11_30"
    standard = [_header(STANDARD)]
    certifiers = [_header("Numero_Fiche;Siret_Certificateur;Nom_Certificateur")]
    links = [_header("Numero_Fiche;Ancienne_Certification;Nouvelle_Certification")]
    xml: dict[str, list[str]] = {"RNCP": [], "RS": []}
    today = date(2026, 12, 1)
    for index, code in enumerate(codes):
        end = today + timedelta(days=rng.randrange(-600, 3000))  # one in six has ended
        if code in delivered:  # the codes the generated events use are deliverable
            end = today + timedelta(days=2000)
        sirets = [f"{rng.randrange(10**13, 10**14)}" for _ in range(rng.choice((1, 2, 3, 3, 4, 7)))]
        replaced = rng.random() < 0.1 and index + 1 < len(codes) and code not in delivered
        newer = codes[index + 1] if replaced else ""
        active = end > today
        standard.append(
            _quoted(
                [
                    *(str(index), code, f"Certification {code} d''exemple", "", "", "NIV6"),
                    *("Niveau 6", "Non", "Non", "", _fr(end - timedelta(days=1800)), _fr(end)),
                    *("", "Enregistrement sur demande", "", "ACTIVE" if active else "INACTIVE"),
                ]
            )
        )
        certifiers += [_quoted([code, f"\t{s}", f"ORGANISME {s[:5]}"]) for s in sirets]
        if newer:
            links.append(_quoted([code, "", newer]))
        limit = f"<DATE_LIMITE_DELIVRANCE>{_fr(end + timedelta(days=900))}</DATE_LIMITE_DELIVRANCE>"
        xml["RS" if code.startswith("RS") else "RNCP"].append(
            "<FICHE>"
            f"<ID_FICHE>{index}</ID_FICHE><NUMERO_FICHE>{code}</NUMERO_FICHE>"
            + (
                "<NOUVELLES_CERTIFICATIONS><NOUVELLE_CERTIFICATION><ID_FICHE_NOUVELLE_"
                f"CERTIFICATION>{newer}</ID_FICHE_NOUVELLE_CERTIFICATION>"
                "</NOUVELLE_CERTIFICATION></NOUVELLES_CERTIFICATIONS>"
                if newer
                else ""
            )
            + f"<INTITULE>Certification {code}</INTITULE><CERTIFICATEURS>"
            + "".join(
                f"<CERTIFICATEUR><SIRET_CERTIFICATEUR>{s}</SIRET_CERTIFICATEUR>"
                "<NOM_CERTIFICATEUR>ORGANISME</NOM_CERTIFICATEUR>"
                "<ETAT_CERTIFICATEUR>Actif</ETAT_CERTIFICATEUR></CERTIFICATEUR>"
                for s in sirets
            )
            + f"</CERTIFICATEURS><ACTIVITES_VISEES>{FILLER}</ACTIVITES_VISEES>"
            "<SI_JURY_FI><ACTIF>Oui</ACTIF></SI_JURY_FI>"
            f"<DATE_FIN_ENREGISTREMENT>{_fr(end)}</DATE_FIN_ENREGISTREMENT>"
            f"<ACTIF>{'Oui' if active else 'Non'}</ACTIF>"
            + (limit if rng.random() < 0.2 else "")
            + "</FICHE>\n"
        )
    folder.mkdir(parents=True, exist_ok=True)
    parts = {"Standard": standard, "Certificateurs": certifiers}
    parts["Ancienne_Nouvelle_Certification"] = links
    parts.update({name: [_header(header)] for name, header in OTHER_PARTS.items()})
    zipped = folder / "export-fiches-csv-2026-12-01.zip"
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, lines in parts.items():
            archive.writestr(
                f"export_fiches_CSV_{name}_{stamp}.csv", ("\r\n".join(lines) + "\r\n").encode()
            )
    xml_folder = folder / "xml"
    xml_folder.mkdir()
    for kind, items in xml.items():
        with (xml_folder / f"export_fiches_{kind}_V4_1_2026-12-01.xml").open("w") as out:
            out.write('<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n<FICHES>\n')
            out.write("<VERSION_FLUX>4.1</VERSION_FLUX>\n")
            out.writelines(items)
            out.write("</FICHES>\n")
    return zipped, xml_folder


def _header(line: str) -> str:
    return _quoted(line.split(";"))


def write_cog(folder: Path, communes: int, seed: int = 11) -> Path:
    """v_commune_depuis_1943 (~1.2 periods per commune), v_mvt_commune, v_pays_territoire."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    head = '"TYPECOM","COM","TNCC","NCC","NCCENR","LIBELLE","DATE_DEBUT","DATE_FIN"'
    history, moves = (
        [head],
        [
            '"MOD","DATE_EFF","TYPECOM_AV","COM_AV","TNCC_AV","NCC_AV","NCCENR_AV","LIBELLE_AV",'
            '"TYPECOM_AP","COM_AP","TNCC_AP","NCC_AP","NCCENR_AP","LIBELLE_AP"'
        ],
    )
    codes = sorted({insee for insee, _, _ in FRENCH_PLACES}) + [
        f"{d:02d}{n:03d}" for d in range(1, 96) for n in range(1, 1000)
    ]
    for code in list(dict.fromkeys(codes))[:communes]:
        name = f"COMMUNE {code}"
        if rng.random() < 0.2:
            change = date(rng.randrange(1950, 2025), 1, 1).isoformat()
            history.append(f'"COM","{code}","0","{name}","X","X","1943-01-01","{change}"')
            history.append(f'"COM","{code}","0","{name} B","X","X","{change}",""')
            moves.append(
                f'"10","{change}","COM","{code}","0","{name}","X","X",'
                f'"COM","{code}","0","{name} B","X","X"'
            )
        else:
            history.append(f'"COM","{code}","0","{name}","X","X","1943-01-01",""')
    (folder / "v_commune_depuis_1943.csv").write_text("\n".join(history) + "\n")
    (folder / "v_mvt_commune_2026.csv").write_text("\n".join(moves) + "\n")
    countries = sorted(
        {insee for insee, _, _ in FOREIGN_PLACES} | {f"99{n:03d}" for n in range(100, 400)}
    )
    text = '"COG","ACTUAL","CRPAY","ANI","LIBCOG","LIBENR","CODEISO2","CODEISO3","CODENUM3"\n'
    text += "".join(f'"{c}","1","","","Pays","Pays","XX","XXX","000"\n' for c in countries)
    (folder / "v_pays_territoire_2026.csv").write_text(text)
    return folder


# -- scenarios (each in its own interpreter) ---------------------------------------------------


def scenario_load(rncp: str, cog: str, state: str, profile: bool) -> None:
    from accrochage.refdata.load import load_refdata
    from accrochage.refdata.memory import ReferenceHolder
    from accrochage.state.sqlite import SqliteStore

    store = SqliteStore(Path(state))
    storage = store.refdata()
    with maybe_profile(profile, "load_refdata"):
        start, cpu = time.perf_counter(), cpu_seconds()
        report = load_refdata(storage, Path(rncp), Path(cog) if cog else None, force=True)
        load_s, load_cpu = time.perf_counter() - start, cpu_seconds() - cpu
    start, cpu = time.perf_counter(), cpu_seconds()
    reference = ReferenceHolder(storage).current()
    read_s, read_cpu = time.perf_counter() - start, cpu_seconds() - cpu
    counts = {k: v for item in report.loaded if item.source for k, v in item.source.counts.items()}
    store.close()
    emit_result(
        {
            "load_s": load_s,
            "load_cpu_s": load_cpu,
            "read_s": read_s,
            "read_cpu_s": read_cpu,
            "counts": counts,
            "loaded": reference is not None,
        }
    )


def scenario_parse(rncp: str, cog: str) -> None:
    """The floor: every line of the same files parsed, nothing kept, no state."""
    from lxml import etree

    start, cpu = time.perf_counter(), cpu_seconds()
    lines = 0
    path = Path(rncp)
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            for info_ in archive.infolist():
                text = archive.read(info_).decode("utf-8-sig")
                lines += sum(1 for _ in csv.reader(io.StringIO(text), delimiter=";"))
    else:
        for file in sorted(path.glob("*.xml")):
            for _, element in etree.iterparse(str(file), tag="FICHE"):
                lines += 1
                element.clear()
    if cog:
        for file in sorted(Path(cog).glob("*.csv")):
            lines += sum(1 for _ in csv.reader(io.StringIO(file.read_text("utf-8-sig"))))
    emit_result(
        {"parse_s": time.perf_counter() - start, "parse_cpu_s": cpu_seconds() - cpu, "lines": lines}
    )


# -- validation with and without reference data -------------------------------------------------


def time_decode(lines: list[bytes], reference: Reference | None, today: date) -> float:
    """CPU seconds of one pass: steadier than wall time when the machine is busy."""
    reg = registry()
    start = time.process_time()
    for line in lines:
        decode(line, reg, today, reference)
    return time.process_time() - start


def validation(state: Path, events: int, repeat: int) -> dict[str, Any]:
    from accrochage.refdata.memory import ReferenceHolder
    from accrochage.state.sqlite import SqliteStore

    store = SqliteStore(state)
    reference = ReferenceHolder(store.refdata()).current()
    store.close()
    assert reference is not None
    today = paris_today()
    lines = make_lines(events, today)
    reg = registry()
    with_findings = sum(
        bool(decode(line, reg, today, reference).warnings)
        != bool(decode(line, reg, today).warnings)
        for line in lines[:2000]
    )
    time_decode(lines[:500], None, today)
    time_decode(lines[:500], reference, today)
    without, with_ = [], []
    for _ in range(repeat):  # interleaved: a busy moment hurts both alike
        gc.collect()
        without.append(time_decode(lines, None, today))
        gc.collect()
        with_.append(time_decode(lines, reference, today))
    return {"without_s": min(without), "with_s": min(with_), "changed_of_2000": with_findings}


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--fiches", type=int, help="fiches of the export (default 30,000)")
    parser.add_argument("--communes", type=int, help="COG communes (default 40,000)")
    parser.add_argument("--events", type=int, help="events decoded (default 50,000)")
    parser.add_argument("--repeat", type=int, default=5, help="decode passes; the best counts")
    parser.add_argument("--rncp", help=argparse_hidden())
    parser.add_argument("--cog", help=argparse_hidden())
    parser.add_argument("--state", help=argparse_hidden())
    args = parser.parse_args()
    if args.scenario == "load":
        return scenario_load(args.rncp, args.cog, args.state, args.profile)
    if args.scenario == "parse":
        return scenario_parse(args.rncp, args.cog)

    fiches = args.fiches or (1_000 if args.quick else 30_000)
    communes = args.communes or (1_500 if args.quick else 40_000)
    events = args.events or (2_000 if args.quick else 50_000)
    repeat = 1 if args.quick else args.repeat
    report = Report(
        "refdata", args.quick, {"fiches": fiches, "communes": communes, "events": events}
    )
    with scratch_dir("refdata") as folder:
        zipped, xml = write_export(folder / "fc", fiches)
        cog = write_cog(folder / "cog", communes)
        sizes = {
            "csv_zip_mb": zipped.stat().st_size / 1e6,
            "xml_mb": sum(p.stat().st_size for p in xml.iterdir()) / 1e6,
        }
        results: dict[str, Any] = {}
        for name, rncp in (("csv", zipped), ("xml", xml)):
            state = folder / f"state-{name}.db"
            results[name] = run_scenario(
                "refdata",
                "load",
                "--rncp",
                str(rncp),
                "--cog",
                str(cog),
                "--state",
                str(state),
                *(["--profile"] if args.profile else []),
                show_stderr=args.profile,
            )
            results[f"parse-{name}"] = run_scenario(
                "refdata", "parse", "--rncp", str(rncp), "--cog", str(cog)
            )
        decoded = validation(folder / "state-xml.db", events, repeat)

    for name, label in (("csv", "CSV zip"), ("xml", "RNCP/RS XML")):
        done, floor = results[name], results[f"parse-{name}"]
        counts = done["counts"]
        report.add(
            at_most(
                f"load {label} + COG",
                done["load_s"],
                "s",
                TARGET_LOAD_S,
                f"{counts.get('fiches', 0):,} fiches, {counts.get('certifiers', 0):,} certifier "
                f"SIRETs, {counts.get('communes', 0):,} communes; CPU "
                f"{done['load_cpu_s']:.1f} s; parse alone {floor['parse_s']:.1f} s "
                f"(CPU {floor['parse_cpu_s']:.1f} s)",
            )
        )
        report.add(at_most(f"peak RSS, load {label}", done["peak_rss_mb"], "MB", TARGET_LOAD_MB))
        report.add(
            info(
                f"read into memory after the {label} load",
                done["read_s"],
                "s",
                f"CPU {done['read_cpu_s']:.2f} s",
            )
        )
        report.add(
            info(
                f"baseline: parse {label} + COG only",
                floor["parse_s"],
                "s",
                f"CPU {floor['parse_cpu_s']:.2f} s; ratio load / parse CPU "
                f"{done['load_cpu_s'] / max(floor['parse_cpu_s'], 1e-9):.1f}x",
            )
        )
    ratio = decoded["with_s"] / decoded["without_s"]
    report.add(
        at_most(
            "decode() with / without reference data",
            ratio,
            "x",
            TARGET_SLOWDOWN,
            f"{events / decoded['with_s']:,.0f} vs {events / decoded['without_s']:,.0f} ev/CPU s",
        )
    )
    report.add(
        info(
            "events whose warnings change with reference data",
            decoded["changed_of_2000"],
            "of 2000",
            "generated events use codes and places the synthetic data knows",
        )
    )
    report.details = {"sizes": sizes, "loads": results, "decode": decoded}
    finish(report, args.json)
    if not (results["csv"]["loaded"] and results["xml"]["loaded"]):
        raise SystemExit("the reference data was not loaded")


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
