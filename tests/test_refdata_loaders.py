"""Loading France compétences' export and INSEE's COG from the real excerpts and variants."""

from __future__ import annotations

import unicodedata
import zipfile
from datetime import date, timedelta
from pathlib import Path

import pytest

from accrochage.errors import RefdataError
from accrochage.models.reference import Fiche
from accrochage.refdata import sources
from accrochage.refdata.cog import load_cog
from accrochage.refdata.france_competences import Export, load_export
from accrochage.refdata.load import load_refdata, status
from accrochage.refdata.sources import entry_name
from accrochage.refdata.tables import clean, rows
from accrochage.state.sqlite import SqliteStore
from tests.refdata_files import (
    CSV_DAY,
    CSV_PARTS,
    UNIDENTIFIED_ROW,
    cog,
    cog_folder,
    csv_export,
    csv_part,
    fc,
    refdata_dir,
    write_zip,
    xml_export,
    xml_fiche,
)

__all__ = ["refdata_dir"]


def by_code(export: Export) -> dict[str, Fiche]:
    return {f.code: f for f in export.fiches}


# -- France compétences: the CSV export ---------------------------------------------------------


def test_the_csv_zip_as_downloaded(refdata_dir: Path) -> None:
    export = load_export(fc(refdata_dir) / "export-fiches-csv-2024-02-22.zip")
    fiches = by_code(export)
    assert export.day == date(2024, 2, 22)
    assert export.kinds == {"RNCP", "RS"}
    assert not export.delivery_limits
    assert len(fiches) == 9
    # The TAB inside the quotes is not part of the SIRET.
    assert fiches["RNCP509"].sirets == {"11004301500012"}
    assert fiches["RS6117"].sirets == {"78466840200018", "31504294500032"}
    assert fiches["RS5000"] == Fiche(
        "RS5000", True, date(2024, 5, 24), None, frozenset({"79279132900016"}), ()
    )
    assert not fiches["RNCP509"].active  # INACTIVE
    assert fiches["RNCP1197"].replaced_by == ("RNCP4049",)
    assert fiches["RNCP19468"].replaced_by == ("RS6117",)
    assert fiches["RNCP30271"].replaced_by == ()
    assert fiches["RNCP1197"].sirets == frozenset()  # no certifier row: no SIRET


def test_the_unzipped_csv_files_give_the_same_fiches(refdata_dir: Path, tmp_path: Path) -> None:
    for part in ("Standard", "Certificateurs", "Ancienne_Nouvelle_Certification"):
        name = f"export_fiches_CSV_{part}_{CSV_DAY}.csv"
        (tmp_path / name).write_bytes(csv_part(refdata_dir, part))
    unzipped = load_export(tmp_path)
    zipped = load_export(fc(refdata_dir) / "export-fiches-csv-2024-02-22.zip")
    assert by_code(unzipped) == by_code(zipped)
    assert unzipped.day == date(2024, 2, 22)


def test_the_date_of_a_csv_name_may_differ_from_the_zips(refdata_dir: Path, tmp_path: Path) -> None:
    export = load_export(csv_export(tmp_path, zip_day="2024-02-23"))
    assert export.day == date(2024, 2, 23)  # the zip's date: what the user downloaded
    assert "RS5000" in by_code(export)


def test_accented_zip_entry_names_are_repaired(refdata_dir: Path, tmp_path: Path) -> None:
    real = fc(refdata_dir) / "export-fiches-csv-2024-02-22.zip"
    with zipfile.ZipFile(real) as archive:
        names = {entry_name(info) for info in archive.infolist()}
    assert f"export_fiches_CSV_Blocs_De_Compétences_{CSV_DAY}.csv" in names
    assert f"export_fiches_CSV_VoixdAccès_{CSV_DAY}.csv" in names
    # Written with and without the UTF-8 flag, in NFC and NFD: the same export either way.
    expected = by_code(load_export(real))
    for flag in (True, False):
        for form in ("NFC", "NFD"):
            entries = {
                unicodedata.normalize(form, f"export_fiches_CSV_{part}_{CSV_DAY}.csv"): csv_part(
                    refdata_dir, part
                )
                for part in CSV_PARTS
            }
            path = write_zip(
                tmp_path / f"{flag}-{form}" / "export-fiches-csv-2024-02-22.zip",
                entries,
                utf8_flag=flag,
            )
            with zipfile.ZipFile(path) as archive:
                infos = archive.infolist()
                assert all(
                    bool(i.flag_bits & 0x800) == flag for i in infos if not i.filename.isascii()
                )
                repaired = {entry_name(info) for info in infos}
            assert f"export_fiches_CSV_VoixdAccès_{CSV_DAY}.csv" in repaired
            assert by_code(load_export(path)) == expected


def test_bom_lf_and_doubled_apostrophes_are_tolerated(refdata_dir: Path, tmp_path: Path) -> None:
    standard = csv_part(refdata_dir, "Standard").replace(b"\r\n", b"\n")
    path = csv_export(tmp_path, parts={"Standard": b"\xef\xbb\xbf" + standard})
    assert by_code(load_export(path)) == by_code(
        load_export(fc(refdata_dir) / "export-fiches-csv-2024-02-22.zip")
    )
    assert clean("\"Management et ingénierie d''affaires\"".strip('"')) == (
        "Management et ingénierie d'affaires"
    )
    assert clean("\t11004301500012") == "11004301500012"


def test_a_missing_column_names_the_file_and_the_column(refdata_dir: Path, tmp_path: Path) -> None:
    broken = csv_part(refdata_dir, "Certificateurs").replace(b"Siret_Certificateur", b"Siret")
    path = csv_export(tmp_path, parts={"Certificateurs": broken})
    with pytest.raises(RefdataError) as caught:
        load_export(path)
    message = str(caught.value)
    assert f"export_fiches_CSV_Certificateurs_{CSV_DAY}.csv" in message
    assert "Siret_Certificateur" in message


def test_a_missing_part_is_named(refdata_dir: Path, tmp_path: Path) -> None:
    entries = {
        f"export_fiches_CSV_{part}_{CSV_DAY}.csv": csv_part(refdata_dir, part)
        for part in ("Standard", "Certificateurs")
    }
    path = write_zip(tmp_path / "export-fiches-csv-2024-02-22.zip", entries)
    with pytest.raises(RefdataError, match="Ancienne_Nouvelle_Certification"):
        load_export(path)


def test_a_folder_without_an_export_says_what_it_expects(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("nothing", encoding="utf-8")
    with pytest.raises(RefdataError, match=r"export-fiches-csv-DATE\.zip"):
        load_export(tmp_path)


# -- France compétences: the XML export ---------------------------------------------------------


def test_the_real_xml_files(refdata_dir: Path) -> None:
    folder = fc(refdata_dir)
    export = load_export(folder)  # XML preferred when both formats are there
    fiches = by_code(export)
    assert export.delivery_limits and export.kinds == {"RNCP", "RS"}
    assert export.day == date(2026, 8, 16)
    # With and without DATE_LIMITE_DELIVRANCE.
    assert fiches["RNCP39568"].delivery_limit == date(2034, 8, 31)
    assert fiches["RNCP39568"].end_of_registration == date(2029, 8, 31)
    assert fiches["RNCP37488"].delivery_limit is None
    assert fiches["RS6604"].delivery_limit == date(2029, 10, 26)
    # ACTIF under FICHE, not the SI_JURY_* ones (all "Oui" in RNCP35419).
    assert not fiches["RNCP35419"].active
    assert fiches["RNCP37488"].active
    assert fiches["RNCP35419"].replaced_by == ("RNCP42147",)
    assert fiches["RS5000"].replaced_by == ("RS6604",)
    assert fiches["RNCP39568"].sirets == {"81738914100018", "11004401300040"}


def test_an_xml_export_of_one_kind_takes_the_other_from_the_csv_beside_it(
    refdata_dir: Path, tmp_path: Path
) -> None:
    """The RS XML file missing, the CSV export beside the RNCP one: RS codes were left
    unchecked (a certification past its limit accepted, nothing said). The RS fiches now come
    from the CSV export, the RNCP ones from the XML."""
    folder = tmp_path / "export"
    folder.mkdir()
    rncp_xml = "export_fiches_RNCP_V4_1_2026-08-16.xml"
    (folder / rncp_xml).write_bytes((fc(refdata_dir) / rncp_xml).read_bytes())
    csv_export(folder)
    export = load_export(folder)
    fiches = by_code(export)
    csv = by_code(load_export(fc(refdata_dir) / "export-fiches-csv-2024-02-22.zip"))
    xml = by_code(load_export(fc(refdata_dir)))
    assert export.kinds == {"RNCP", "RS"}
    assert {c for c in fiches if c.startswith("RS")} == {c for c in csv if c.startswith("RS")}
    assert all(fiches[c] == csv[c] for c in fiches if c.startswith("RS"))
    assert {c for c in fiches if c.startswith("RNCP")} == {c for c in xml if c.startswith("RNCP")}
    assert fiches["RNCP39568"].delivery_limit == date(2034, 8, 31), "the RNCP ones from the XML"
    assert export.day == date(2024, 2, 22), "the oldest of the files used"
    assert rncp_xml in export.files and any("CSV_Standard" in f for f in export.files)


def test_an_export_of_one_kind_alone_is_said_to_leave_the_other_unchecked(
    refdata_dir: Path, tmp_path: Path
) -> None:
    rs_xml = "export_fiches_RS_V4_1_2026-08-16.xml"
    (tmp_path / rs_xml).write_bytes((fc(refdata_dir) / rs_xml).read_bytes())
    store = SqliteStore(tmp_path / "state.db")
    try:
        load_refdata(store.refdata(), tmp_path, None)
        shown = status(store.refdata(), date(2026, 8, 20), timedelta(days=30))
    finally:
        store.close()
    (warning,) = shown["warnings"]
    assert "lists no RNCP fiche: RNCP codes are not checked" in warning
    assert "export_fiches_RNCP_V4_1_DATE.xml" in warning


def test_a_certifier_without_siret_and_cdata(tmp_path: Path) -> None:
    fiche = xml_fiche(
        "RNCP40344", end="31/12/2029", certifiers=(None, "\t12345678900011"), jury_active="Oui"
    )
    rs = xml_fiche("RS1", end="01/01/2030", active="Non", jury_active="Oui")
    (tmp_path / "export_fiches_RNCP_V4_1_2026-08-16.xml").write_bytes(xml_export([fiche]))
    (tmp_path / "export_fiches_RS_V4_1_2026-08-16.xml").write_bytes(xml_export([rs]))
    fiches = by_code(load_export(tmp_path))
    assert fiches["RNCP40344"].sirets == {"12345678900011"}
    assert fiches["RNCP40344"].unidentified_certifiers  # SNVEL has no SIRET there
    assert not fiches["RS1"].unidentified_certifiers  # no certifier at all: nothing unknown
    assert fiches["RNCP40344"].active
    assert not fiches["RS1"].active  # the SI_JURY_FI ACTIF "Oui" is not the fiche's


def test_a_certifier_row_without_siret_is_counted_unidentified(
    refdata_dir: Path, tmp_path: Path
) -> None:
    certifiers = csv_part(refdata_dir, "Certificateurs") + UNIDENTIFIED_ROW.encode()
    export = load_export(csv_export(tmp_path, parts={"Certificateurs": certifiers}))
    fiches = by_code(export)
    assert fiches["RS5000"].sirets == {"79279132900016"}
    assert fiches["RS5000"].unidentified_certifiers
    assert not any(f.unidentified_certifiers for c, f in fiches.items() if c != "RS5000")


def test_xml_zips_are_streamed(refdata_dir: Path, tmp_path: Path) -> None:
    for kind in ("RNCP", "RS"):
        name = f"export_fiches_{kind}_V4_1_2026-08-16.xml"
        data = (fc(refdata_dir) / name).read_bytes()
        write_zip(tmp_path / f"export-fiches-{kind.lower()}-v4-1-2026-08-17.zip", {name: data})
    export = load_export(tmp_path)
    assert export.day == date(2026, 8, 17)
    assert by_code(export) == by_code(load_export(fc(refdata_dir)))


def test_both_formats_give_the_same_values(refdata_dir: Path, tmp_path: Path) -> None:
    """The real CSV export, written as XML: every field both carry is equal."""
    from_csv = by_code(load_export(fc(refdata_dir) / "export-fiches-csv-2024-02-22.zip"))
    rncp: list[str] = []
    rs: list[str] = []
    for fiche in from_csv.values():
        text = xml_fiche(
            fiche.code,
            end=fiche.end_of_registration.strftime("%d/%m/%Y") if fiche.end_of_registration else "",
            active="Oui" if fiche.active else "Non",
            certifiers=tuple(sorted(fiche.sirets)),
            newer=fiche.replaced_by,
        )
        (rncp if fiche.code.startswith("RNCP") else rs).append(text)
    (tmp_path / "export_fiches_RNCP_V4_1_2024-02-22.xml").write_bytes(xml_export(rncp))
    (tmp_path / "export_fiches_RS_V4_1_2024-02-22.xml").write_bytes(xml_export(rs))
    assert by_code(load_export(tmp_path)) == from_csv
    # And the fiche both real excerpts carry (RS5000, 2024 CSV and 2026 XML).
    from_xml = by_code(load_export(fc(refdata_dir)))
    for name in ("end_of_registration", "sirets"):
        assert getattr(from_xml["RS5000"], name) == getattr(from_csv["RS5000"], name)


# -- INSEE COG ----------------------------------------------------------------------------------


def test_the_real_cog_files(refdata_dir: Path) -> None:
    loaded = load_cog(cog(refdata_dir))
    periods = {(c.code, c.start, c.end) for c in loaded.communes}
    assert ("01004", date(1943, 1, 1), date(1955, 3, 31)) in periods
    assert ("2A004", date(1976, 1, 1), None) in periods
    assert ("75101", date(1943, 1, 1), None) in periods  # an arrondissement
    assert any(m.before == "20004" and m.after == "2A004" for m in loaded.moves)
    assert loaded.vintage == 2025


def test_unquoted_crlf_bom_and_the_older_columns_give_the_same(
    refdata_dir: Path, tmp_path: Path
) -> None:
    quoted = load_cog(cog(refdata_dir))
    text = (cog(refdata_dir) / "v_commune_depuis_1943.csv").read_text(encoding="utf-8")
    unquoted = "\r\n".join(line.replace('"', "") for line in text.splitlines()) + "\r\n"
    (tmp_path / "v_commune_depuis_1943.csv").write_bytes(b"\xef\xbb\xbf" + unquoted.encode())
    variant = load_cog(tmp_path)
    assert {(c.code, c.start, c.end) for c in variant.communes} == {
        (c.code, c.start, c.end) for c in quoted.communes
    }
    # The 2024-era layout: 7 columns, no TYPECOM.
    older = "\n".join(line.split(",", 1)[1] for line in text.splitlines()) + "\n"
    (tmp_path / "v_commune_depuis_1943.csv").write_text(older, encoding="utf-8")
    assert len(load_cog(tmp_path).communes) == len(quoted.communes)


def test_a_loose_file_beside_a_zip_holding_the_same_one_is_refused(
    refdata_dir: Path, tmp_path: Path
) -> None:
    """Which of the two is newer cannot be told: the zip (older, left there) won."""
    real = cog(refdata_dir) / "v_commune_depuis_1943.csv"
    with zipfile.ZipFile(tmp_path / "cog_ensemble_2024_csv.zip", "w") as packed:
        packed.writestr("v_commune_depuis_1943.csv", real.read_bytes())
    (tmp_path / "v_commune_depuis_1943.csv").write_bytes(real.read_bytes())
    with pytest.raises(RefdataError, match=r"v_commune_depuis_1943\.csv is there twice") as raised:
        load_cog(tmp_path)
    assert "cog_ensemble_2024_csv.zip" in str(raised.value)
    (tmp_path / "cog_ensemble_2024_csv.zip").unlink()
    assert load_cog(tmp_path).communes, "one copy: loaded"


def test_the_unquoted_crlf_changes_file_of_datagouv(refdata_dir: Path, tmp_path: Path) -> None:
    real = cog(refdata_dir) / "datagouv-decoupage-administratif" / "mouvements-communes.csv"
    (tmp_path / "mouvements-communes.csv").write_bytes(real.read_bytes())
    (tmp_path / "v_pays_territoire_2026.csv").write_text('"COG"\n"99100"\n', encoding="utf-8")
    loaded = load_cog(tmp_path)
    assert any(m.before == "01324" and m.after == "01245" for m in loaded.moves)
    assert loaded.vintage == 2026


def test_countries(tmp_path: Path, refdata_dir: Path) -> None:
    loaded = load_cog(cog_folder(tmp_path))
    assert {"99100", "99134", "99313", "99157"} <= loaded.countries


def test_every_countries_file_counts_so_former_states_are_known(
    tmp_path: Path, refdata_dir: Path
) -> None:
    """The current list sorted after the historical one and was the only one read: a holder
    born in a former state (a code only the historical file keeps) got "not a country"."""
    folder = cog_folder(tmp_path)
    (folder / "v_pays_et_territoire_depuis_1943.csv").write_text(
        '"COG","CRPAY","LIBCOG","LIBENR","DATE_DEBUT","DATE_FIN"\n'
        '"99111","","Tchécoslovaquie","République tchécoslovaque","1943-01-01","1992-12-31"\n',
        encoding="utf-8",
    )
    loaded = load_cog(folder)
    assert "99111" in loaded.countries, "the historical file's former state"
    assert {"99100", "99134"} <= loaded.countries, "and the current list's"
    assert "v_pays_et_territoire_depuis_1943.csv" in loaded.files
    assert "v_pays_territoire_2025.csv" in loaded.files


def test_a_missing_cog_column_names_the_file_and_the_column(
    refdata_dir: Path, tmp_path: Path
) -> None:
    text = (cog(refdata_dir) / "v_commune_depuis_1943.csv").read_text(encoding="utf-8")
    (tmp_path / "v_commune_depuis_1943.csv").write_text(
        text.replace('"DATE_FIN"', '"FIN"'), encoding="utf-8"
    )
    with pytest.raises(RefdataError) as caught:
        load_cog(tmp_path)
    assert "v_commune_depuis_1943.csv" in str(caught.value)
    assert "DATE_FIN" in str(caught.value)


def damage(path: Path, entry: str) -> None:
    """Flip 20 bytes inside `entry`'s compressed data in the zip at `path`."""
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(entry)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + 20
    for offset in range(start, start + 20):
        raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))


def test_a_damaged_zip_entry_is_an_error_naming_it(refdata_dir: Path, tmp_path: Path) -> None:
    """Bytes flipped inside an entry's compressed data raised zlib.error: a traceback, and
    under `run` one at every tick."""
    path = csv_export(tmp_path)
    with zipfile.ZipFile(path) as archive:
        damage(path, next(i.filename for i in archive.infolist() if "Standard" in i.filename))
    with pytest.raises(RefdataError) as caught:
        load_export(path)
    assert "cannot be read" in str(caught.value) and "Standard" in str(caught.value)


def test_a_zip_entry_that_unpacks_far_beyond_its_size_is_refused_before_it_is_read_whole(
    refdata_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 514 KB zip unpacking to 512 MB took 3.7 GB: an entry may unpack to 100 times its
    packed size (text packs 5 to 20 times) beyond a free allowance, here lowered to 1 MB for
    a test of 5 MB of line breaks (packed to a few KB)."""
    monkeypatch.setattr(sources, "UNPACKED_FREE", 1_000_000)
    bomb = csv_part(refdata_dir, "Standard") + b"\r\n" * 2_500_000
    path = csv_export(tmp_path, parts={"Standard": bomb})
    with zipfile.ZipFile(path) as archive:
        packed = next(i for i in archive.infolist() if "Standard" in i.filename).compress_size
    assert 1_000_000 + 100 * packed < len(bomb)
    with pytest.raises(RefdataError, match="unpacks to more than"):
        load_export(path)
    assert sources.unpacked_bound(10_000_000) == 1_000_000 + 100 * 10_000_000
    monkeypatch.undo()
    assert sources.unpacked_bound(1 << 40) == sources.MAX_FILE_BYTES


def test_a_field_beyond_the_csv_limit_is_an_error_naming_its_line(
    refdata_dir: Path, tmp_path: Path
) -> None:
    """A 200 KB field was a `_csv.Error` traceback; beyond 16 MiB it is refused, by line."""
    long = b'"RNCP99999";"' + b"A" * 200_000 + b'"\r\n'
    path = csv_export(tmp_path, parts={"Standard": csv_part(refdata_dir, "Standard") + long})
    with pytest.raises(RefdataError, match="values where the header has"):
        load_export(path)  # the field read; the row is short: a damaged line, named
    huge = b'"RNCP99999";"' + b"A" * (17 * 1024 * 1024) + b'"\r\n'
    path = csv_export(
        tmp_path / "huge", parts={"Standard": csv_part(refdata_dir, "Standard") + huge}
    )
    with pytest.raises(RefdataError, match=r"line \d+: cannot be read as CSV"):
        load_export(path)


def test_a_cut_xml_export_says_where_once(refdata_dir: Path, tmp_path: Path) -> None:
    name = "export_fiches_RS_V4_1_2026-08-16.xml"
    whole = (fc(refdata_dir) / name).read_bytes()
    (tmp_path / name).write_bytes(whole[: whole.rindex(b"</FICHE>")])
    with pytest.raises(RefdataError, match="not well-formed XML") as caught:
        load_export(tmp_path)
    message = str(caught.value)
    assert message.count(", line ") == 1, message
    assert message.endswith("download it again")


def test_an_xml_zip_entry_unpacking_far_beyond_its_size_is_refused_while_streamed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A zipped XML export is parsed as it unpacks: it had no bound (a 583 KB zip reached
    3.99 GB), and elements other than FICHE were never freed. Here 3 MB of `<X/>` packed to
    a few KB, against an allowance lowered to 1 MB."""
    monkeypatch.setattr(sources, "UNPACKED_FREE", 1_000_000)
    name = "export_fiches_RNCP_V4_1_2026-11-01.xml"
    bomb = b"<FICHES>" + b"<X/>" * 750_000 + b"</FICHES>"
    write_zip(tmp_path / "export-fiches-rncp-v4-1-2026-11-01.zip", {name: bomb})
    with pytest.raises(RefdataError, match="unpacks to more than") as caught:
        load_export(tmp_path)
    assert name in str(caught.value)


def test_a_damaged_xml_zip_entry_is_an_error_naming_it(refdata_dir: Path, tmp_path: Path) -> None:
    """A flipped byte in a zipped XML export's entry was a `BadZipFile` traceback, and under
    `run` one at every tick of the reference data job."""
    name = "export_fiches_RS_V4_1_2026-08-16.xml"
    path = write_zip(
        tmp_path / "export-fiches-rs-v4-1-2026-08-17.zip",
        {name: (fc(refdata_dir) / name).read_bytes()},
    )
    damage(path, name)
    with pytest.raises(RefdataError) as caught:
        load_export(tmp_path)
    assert "cannot be read" in str(caught.value) and name in str(caught.value)


def test_elements_beside_the_fiches_are_skipped(tmp_path: Path) -> None:
    """Elements under the root that are not FICHE (`VERSION_FLUX`, others) are skipped, and
    freed as they are read."""
    data = xml_export(["  <AUTRE><A>x</A></AUTRE>", xml_fiche("RS5001", end="01/01/2030")])
    (tmp_path / "export_fiches_RS_V4_1_2026-11-01.xml").write_bytes(data)
    assert list(by_code(load_export(tmp_path))) == ["RS5001"]


def test_a_header_of_the_wrong_columns_is_quoted_on_one_line() -> None:
    """A header cell holding a line break split the error's log line (the logs review): the
    second part came without time or level, and could pass for a line of its own."""
    data = b'"COM\nERROR forged";LIBELLE\n75056;Paris\n'
    with pytest.raises(RefdataError) as raised:
        list(rows(data, "v_commune.csv", ["COM", "LIBELLE"]))
    said = str(raised.value)
    assert "\n" not in said and "COM\\nERROR forged" in said
