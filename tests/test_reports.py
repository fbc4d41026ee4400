"""The CDC processing report reader: real reports, hostile input, format edge cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from accrochage.errors import ReportError
from accrochage.models.cdc import already_exists, held_under
from accrochage.sinks import reports
from accrochage.sinks.reports import (
    FileError,
    PassageOutcome,
    ProcessingReport,
    parse_report,
    read_report,
)
from accrochage.streams.report_copies import kept_name

STEP1 = "Aucun titulaire ne correspond aux critères obligatoires"
STEP2 = (
    "Aucun titulaire ne correspond aux critères obligatoires enrichis du jour et du mois de "
    "naissance"
)
DUPLICATE = (
    "Le passage certification avec le bcr émetteur 03VML243 et l'id technique partenaire "
    "1559735 existe déjà en base"
)
HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<rapport xmlns:ns2="urn:cdc:cpf:pc5:rapport:schema">'
)


def ko(id_technique: str, message: str) -> PassageOutcome:
    return PassageOutcome(id_technique, accepted=False, message=message, already_known=False)


def ok(id_technique: str) -> PassageOutcome:
    return PassageOutcome(id_technique, accepted=True, message=None, already_known=False)


def known(id_technique: str) -> PassageOutcome:
    return PassageOutcome(id_technique, accepted=True, message=DUPLICATE, already_known=True)


def rapport(body: str) -> bytes:
    return f"{HEAD}<nomFichier>f.xml</nomFichier>{body}</rapport>".encode()


def refused(data: bytes, *fragments: str) -> str:
    with pytest.raises(ReportError) as caught:
        parse_report(data, source="in.xml")
    text = str(caught.value)
    assert "in.xml" in text
    for fragment in fragments:
        assert fragment in text
    return text


@pytest.fixture()
def report_dir(shared_dir: Path) -> Path:
    return shared_dir / "cdc" / "reports"


# --- the three real reports --------------------------------------------------------------


def test_processed_report(report_dir: Path) -> None:
    report = read_report(report_dir / "report-processed.xml")
    assert report == ProcessingReport(
        file_name="pix-cpf-export-20231016-223239.xml",
        id_flux="4df76fd4-0915-46df-8c56-525506af35be",
        id_traitement="67598",
        outcomes=(
            ko("1979262", STEP1),
            ko("1996215", STEP2),
            known("1983189"),
            ok("1968666"),
            ok("1964200"),
        ),
        file_errors=(),
    )
    assert not report.rejected_whole_file
    assert report.accepted == ("1983189", "1968666", "1964200")
    assert [o.id_technique for o in report.rejected] == ["1979262", "1996215"]


def test_small_report(report_dir: Path) -> None:
    report = read_report(report_dir / "report-small.xml")
    assert report == ProcessingReport(
        file_name="pix-cpf-export-20221003-324234.xml",
        id_flux="1234-abcd",
        id_traitement="1",
        outcomes=(ko("1234", STEP1), known("4567"), ok("891011")),
        file_errors=(),
    )
    assert report.accepted == ("4567", "891011")
    assert report.rejected == (ko("1234", STEP1),)


def test_file_rejected_report(report_dir: Path) -> None:
    report = read_report(report_dir / "report-file-rejected.xml")
    message = (
        "Un espace est obligatoire entre les données et la cible de l'instruction de traitement."
    )
    assert report == ProcessingReport(
        file_name="pix-cpf-export-20231016-223357_002.xml",
        id_flux=None,
        id_traitement="68548",
        outcomes=(),
        file_errors=(FileError(type="XSD", message=message, line=1, column=18),),
    )
    assert report.rejected_whole_file
    assert report.accepted == ()
    assert report.rejected == ()


# --- hostile input -----------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rapport [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rapport><PassagesOK><idTechnique>&lol9;</idTechnique></PassagesOK></rapport>"""


def test_billion_laughs_refused() -> None:
    refused(BILLION_LAUGHS, "DOCTYPE")


def test_xxe_refused_and_secret_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-42")
    data = (
        f'<?xml version="1.0"?>\n<!DOCTYPE rapport [<!ENTITY xxe SYSTEM "{secret.as_uri()}">]>'
        "<rapport><PassagesKO><passage><idTechnique>1</idTechnique>"
        "<messageErreur>&xxe;</messageErreur></passage></PassagesKO></rapport>"
    ).encode()
    assert "TOP-SECRET-42" not in refused(data, "DOCTYPE")


def test_doctype_in_utf16_caught_after_parsing() -> None:
    """The byte scan cannot see UTF-16 markup; the parsed tree's docinfo does."""
    text = (
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE rapport><rapport><PassagesOK/></rapport>'
    )
    refused(text.encode("utf-16"), "DOCTYPE")


def test_oversized_bytes_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reports, "MAX_REPORT_BYTES", 100)
    refused(
        rapport("<PassagesOK>" + "<idTechnique>1</idTechnique>" * 10 + "</PassagesOK>"), "limit"
    )


def test_oversized_file_refused_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.xml"
    path.write_bytes(
        rapport("<PassagesOK>" + "<idTechnique>1</idTechnique>" * 10 + "</PassagesOK>")
    )
    monkeypatch.setattr(reports, "MAX_REPORT_BYTES", 100)

    def no_read(*_: object, **__: object) -> None:
        raise AssertionError("the file was opened despite its size")

    monkeypatch.setattr(Path, "open", no_read)
    with pytest.raises(ReportError, match="limit") as caught:
        read_report(path)
    assert str(path) in str(caught.value)


def test_missing_file_is_report_error(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="cannot be read"):
        read_report(tmp_path / "absent.xml")


@pytest.mark.parametrize("data", [b"", b"  \n\t"])
def test_empty_refused(data: bytes) -> None:
    refused(data, "empty")


@pytest.mark.parametrize("data", [b"PassagesOK 1234", b"<rapport><PassagesOK>", b"\xff\xfe\x00"])
def test_not_xml_refused(data: bytes) -> None:
    refused(data, "not well-formed XML", "<rapport>")


@pytest.mark.parametrize(
    "data",
    [
        b"<report><PassagesOK/></report>",
        b'<rapport xmlns="urn:cdc:cpf:pc5:rapport:schema"><PassagesOK/></rapport>',
        b"<Rapport><PassagesOK/></Rapport>",
    ],
)
def test_wrong_root_refused(data: bytes) -> None:
    refused(data, "root element", "expected root <rapport>")


# --- structure -----------------------------------------------------------------------------


def test_only_passages_ok() -> None:
    report = parse_report(rapport("<PassagesOK><idTechnique> 7 </idTechnique></PassagesOK>"))
    assert report.outcomes == (ok("7"),)
    assert report.file_name == "f.xml"
    assert report.id_flux is None
    assert report.id_traitement is None


def test_only_passages_ko() -> None:
    body = (
        "<PassagesKO><passage>\n  <idTechnique>\n 8\n</idTechnique>"
        f"<messageErreur>  {STEP1}\n</messageErreur></passage></PassagesKO>"
    )
    report = parse_report(rapport(body))
    assert report.outcomes == (ko("8", STEP1),)
    assert report.accepted == ()


def test_empty_sections_mean_no_outcome() -> None:
    report = parse_report(rapport("<PassagesKO/><PassagesOK></PassagesOK>"))
    assert report.outcomes == ()
    assert not report.rejected_whole_file


@pytest.mark.parametrize(
    "body",
    [
        "",
        "<passagesOK><idTechnique>1</idTechnique></passagesOK>",
        "<PassagesOk><idTechnique>1</idTechnique></PassagesOk>",
        "<passagesKO><passage><idTechnique>1</idTechnique></passage></passagesKO>",
        "<Erreurs><erreur><message>x</message></erreur></Erreurs>",
    ],
)
def test_no_section_refused(body: str) -> None:
    refused(rapport(body), "case-sensitive", "<rapport>")


def test_ko_passage_without_id_refused() -> None:
    body = f"<PassagesKO><passage><messageErreur>{STEP1}</messageErreur></passage></PassagesKO>"
    refused(rapport(body), "has no <idTechnique>")


def test_ko_passage_with_blank_id_refused() -> None:
    body = "<PassagesKO><passage><idTechnique>  </idTechnique></passage></PassagesKO>"
    refused(rapport(body), "has no <idTechnique>")


def test_bare_id_in_ko_section_refused() -> None:
    refused(rapport("<PassagesKO><idTechnique>1</idTechnique></PassagesKO>"), "unexpected")


def test_empty_id_in_ok_section_refused() -> None:
    refused(rapport("<PassagesOK><idTechnique/></PassagesOK>"), "instead of an id")


def test_contradicting_outcomes_refused() -> None:
    body = (
        f"<PassagesKO><passage><idTechnique>9</idTechnique><messageErreur>{STEP1}"
        "</messageErreur></passage></PassagesKO>"
        "<PassagesOK><idTechnique>9</idTechnique></PassagesOK>"
    )
    refused(rapport(body), "idTechnique 9", "both accepted and rejected")


def test_same_outcome_twice_kept_once() -> None:
    body = "<PassagesOK><idTechnique>5</idTechnique><idTechnique>5</idTechnique></PassagesOK>"
    assert parse_report(rapport(body)).outcomes == (ok("5"),)


def test_duplicate_message_and_ok_agree() -> None:
    body = (
        f"<PassagesKO><passage><idTechnique>5</idTechnique><messageErreur>{DUPLICATE}"
        "</messageErreur></passage></PassagesKO>"
        "<PassagesOK><idTechnique>5</idTechnique></PassagesOK>"
    )
    assert parse_report(rapport(body)).outcomes == (known("5"),)


def test_an_ok_section_before_the_ko_one_keeps_the_refusals_message() -> None:
    body = (
        "<PassagesOK><idTechnique>5</idTechnique></PassagesOK>"
        f"<PassagesKO><passage><idTechnique>5</idTechnique><messageErreur>{DUPLICATE}"
        "</messageErreur></passage></PassagesKO>"
    )
    assert parse_report(rapport(body)).outcomes == (known("5"),)


def test_the_first_header_element_counts_and_nested_ones_do_not() -> None:
    body = (
        "<idFlux>  </idFlux><idFlux>second</idFlux>"
        "<PassagesOK><idTechnique>5<idFlux>inner</idFlux></idTechnique></PassagesOK>"
        "<nomFichier>later.xml</nomFichier>"
    )
    report = parse_report(rapport(body))
    assert (report.file_name, report.id_flux) == ("f.xml", None)
    assert report.outcomes == (ok("5"),)


def test_a_report_above_the_old_50_mb_limit_is_read_whole() -> None:
    """200,000 refused passages whose ids have the 255 characters the CDC allows weigh
    ~100 MB: such a report was refused above 50 MB, and the operator could not close the loop
    of the largest file the CDC takes. It is now read in a stream."""
    passages = 120_000
    ids = [f"{n:06d}" + "x" * 249 for n in range(passages)]
    body = "".join(
        f"<passage>\n  <idTechnique>{i}</idTechnique>\n  <messageErreur>{STEP2}</messageErreur>"
        "\n</passage>\n"
        for i in ids
    )
    data = rapport(f"<PassagesKO>{body}</PassagesKO><PassagesOK/>")
    assert len(data) > 50 * 1024 * 1024
    report = parse_report(data)
    assert len(report.outcomes) == passages
    assert report.outcomes[0] == ko(ids[0], STEP2)
    assert report.outcomes[-1] == ko(ids[-1], STEP2)


@pytest.mark.parametrize("nested", [False, True])
def test_a_passage_holding_thousands_of_elements_is_refused(nested: bool) -> None:
    """Each element of a passage is held until the passage ends: 10,000,000 of them in one
    passage took 1.35 GB. A real passage holds a handful; beyond a thousand, refused."""
    filler = "<a/>" * (reports.MAX_ELEMENTS_IN_A_PASSAGE + 1)
    if nested:
        filler = f"<a>{filler}</a>"
    body = (
        f"<PassagesKO><passage><idTechnique>R-1</idTechnique><messageErreur>m</messageErreur>"
        f"{filler}</passage></PassagesKO>"
    )
    with pytest.raises(ReportError, match="holds more than 1000 elements"):
        parse_report(rapport(body))
    fine = body.replace(filler, "<a/>" * 10)
    assert parse_report(rapport(fine)).outcomes == (ko("R-1", "m"),)


def test_comments_and_processing_instructions_ignored() -> None:
    body = "<PassagesOK><!-- c --><?pi x?><idTechnique>3</idTechnique></PassagesOK>"
    assert parse_report(rapport(body)).outcomes == (ok("3"),)


def test_empty_erreurs_refused() -> None:
    refused(rapport("<erreurs/>"), "no <erreur>")


def test_non_numeric_line_and_column() -> None:
    body = "<erreurs><erreur><message> m </message><ligne>?</ligne></erreur></erreurs>"
    report = parse_report(rapport(body))
    assert report.file_errors == (FileError(type=None, message="m", line=None, column=None),)
    assert report.rejected_whole_file


# --- the "existe déjà en base" duplicate -------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        DUPLICATE,
        DUPLICATE.upper(),
        DUPLICATE.replace("déjà", "deja").replace("'", "’"),
        DUPLICATE.replace("déjà", "dejà"),
        DUPLICATE.replace("déjà", "de\u0301ja\u0300"),  # decomposed accents
        DUPLICATE.encode().decode("latin-1"),  # mojibake "dÃ©jÃ\xa0"
        "Passage existe  déjà\nen base",
    ],
)
def test_already_known_variants(message: str) -> None:
    assert already_exists(message)


@pytest.mark.parametrize(
    "message",
    [
        STEP1,
        STEP2,
        "Plusieurs titulaires ont été identifiés",
        "Le titulaire existe déjà en base",  # a titulaire, not the passage: still a rejection
        "Le passage certification existe en base",
        "",
    ],
)
def test_not_already_known(message: str) -> None:
    assert not already_exists(message)


def test_an_already_exists_naming_another_id_says_which() -> None:
    """The real report answers idTechnique 1983189 with "… l'id technique partenaire 1559735
    existe déjà en base": the certification is held under the other id."""
    assert held_under(DUPLICATE, "1983189") == "1559735"
    assert held_under(DUPLICATE, "1559735") is None
    assert held_under(DUPLICATE.upper(), "1983189") == "1559735"
    assert held_under("Le passage certification existe déjà en base", "1983189") is None
    assert held_under(STEP1, "1983189") is None
    named = DUPLICATE.replace("1559735", "PX-2026-Ab9")
    assert held_under(named, "PX-1") == "PX-2026-Ab9", "as the CDC wrote it, not case-folded"
    assert held_under(named, "px-2026-ab9") is None, "the record's own id, in another case"


def test_ko_without_message_is_plain_rejection() -> None:
    report = parse_report(
        rapport("<PassagesKO><passage><idTechnique>4</idTechnique></passage></PassagesKO>")
    )
    assert report.outcomes == (
        PassageOutcome("4", accepted=False, message=None, already_known=False),
    )


def test_a_long_report_name_keeps_its_extension_in_its_copy() -> None:
    """The portal's names run long ("Accusé de traitement … .xml"): cut from the end, the
    copy lost its `.xml`."""
    long = "f3d4_Accusé de traitement du fichier " + "x" * 120 + "_20261210.xml"
    kept = kept_name(long)
    assert len(kept) == 100 and kept.endswith("x.xml")
    assert kept_name("short report.xml") == "short_report.xml"
    assert kept_name("a" * 150) == "a" * 100, "no extension: cut as before"
