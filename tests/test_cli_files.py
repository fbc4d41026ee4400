"""The file commands of the CLI: check-xml and schema, and the published JSON Schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from accrochage.cli import main
from accrochage.models.jsonschema import event_json_schema_text
from accrochage.sinks.schemas import MAX_FILE_BYTES

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ["flux-full-1.1.2.xml", "flux-pix-1.1.2.xml"]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.mark.parametrize("name", EXAMPLES)
def test_check_xml_accepts_a_shared_example(runner: CliRunner, shared_dir: Path, name: str) -> None:
    example = shared_dir / "cdc" / "examples" / name
    result = runner.invoke(main, ["check-xml", str(example)])
    assert result.exit_code == 0, result.output
    assert "valid" in result.stdout and name in result.stdout


def test_check_xml_accepts_several_files_and_an_explicit_xsd(
    runner: CliRunner, shared_dir: Path, official_xsd: Path
) -> None:
    files = [str(shared_dir / "cdc" / "examples" / name) for name in EXAMPLES]
    result = runner.invoke(main, ["check-xml", *files, "--xsd", str(official_xsd)])
    assert result.exit_code == 0, result.output
    assert result.stdout.count(": valid (") == 2


def _broken(shared_dir: Path, tmp_path: Path) -> Path:
    text = (shared_dir / "cdc" / "examples" / "flux-full-1.1.2.xml").read_text(encoding="utf-8")
    assert text.count("PAR_ADMISSION") >= 1
    broken = tmp_path / "broken.xml"
    broken.write_text(text.replace("PAR_ADMISSION", "PAR_HASARD", 1), encoding="utf-8")
    return broken


def test_check_xml_refuses_a_broken_file_on_stderr(
    runner: CliRunner, shared_dir: Path, tmp_path: Path
) -> None:
    result = runner.invoke(main, ["check-xml", str(_broken(shared_dir, tmp_path))])
    assert result.exit_code == 1
    assert "obtentionCertification" in result.stderr and "enumeration" in result.stderr
    assert "PAR_HASARD" not in result.stderr  # the value is never quoted
    assert result.stderr.startswith("error: ")
    assert "valid (" not in result.stdout


def test_check_xml_refuses_a_truncated_file(
    runner: CliRunner, shared_dir: Path, tmp_path: Path
) -> None:
    text = (shared_dir / "cdc" / "examples" / "flux-pix-1.1.2.xml").read_bytes()
    truncated = tmp_path / "truncated.xml"
    truncated.write_bytes(text[: len(text) * 2 // 3])
    result = runner.invoke(main, ["check-xml", str(truncated)])
    assert result.exit_code == 1
    assert result.stderr.strip()


def test_check_xml_checks_every_file_and_reports_every_error(
    runner: CliRunner, shared_dir: Path, tmp_path: Path
) -> None:
    good = shared_dir / "cdc" / "examples" / "flux-pix-1.1.2.xml"
    text = (shared_dir / "cdc" / "examples" / "flux-full-1.1.2.xml").read_text(encoding="utf-8")
    lines = text.splitlines()
    header_line = next(i for i, line in enumerate(lines, 1) if "<cpf:horodatage>" in line)
    enum_line = next(i for i, line in enumerate(lines, 1) if "PAR_ADMISSION" in line)
    first_id = text.split("<cpf:idTechnique>", 1)[1].split("<", 1)[0]
    broken = text.replace("<cpf:horodatage>", "<cpf:horodatage>yesterday ", 1)
    broken = broken.replace("PAR_ADMISSION", "PAR_HASARD", 1)
    first, second = tmp_path / "first.xml", tmp_path / "second.xml"
    first.write_text(broken, encoding="utf-8")
    second.write_text(broken.replace("<cpf:natureDeposant>", "<cpf:natureDeposant>X", 1))

    result = runner.invoke(main, ["check-xml", str(first), str(good), str(second)])

    assert result.exit_code == 1
    assert "flux-pix-1.1.2.xml: valid" in result.stdout
    assert "first.xml: 2 error(s)" in result.stderr
    assert "second.xml: 3 error(s)" in result.stderr
    assert f"line {header_line}, in the header, element horodatage:" in result.stderr
    assert (
        f"line {enum_line}, passage 1 (idTechnique {first_id}), element obtentionCertification:"
        in result.stderr
    )
    assert "element natureDeposant" in result.stderr
    for leak in ("{urn:", "b'", 'b"', "PAR_HASARD", "yesterday"):
        assert leak not in result.stderr, leak


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """In a process of its own: a crash of the parser (SIGSEGV) is an exit code, not ours."""
    return subprocess.run(
        [sys.executable, "-m", "accrochage", *args],
        capture_output=True,
        text=True,
        timeout=120,  # a guard against a hang (a FIFO opened for reading), not a measure
        cwd=ROOT,
        check=False,
    )


def test_check_xml_refuses_a_dtd_with_an_internal_entity_without_expanding_it(
    shared_dir: Path, tmp_path: Path
) -> None:
    text = (shared_dir / "cdc" / "examples" / "flux-pix-1.1.2.xml").read_text(encoding="utf-8")
    declaration, rest = text.split("\n", 1)
    entity = '<!DOCTYPE cpf:flux [<!ENTITY who "EXPANDED-ENTITY">]>'
    path = tmp_path / "entity.xml"
    path.write_text(
        f"{declaration}\n{entity}\n{rest.replace('>12<', '>&who;<', 1)}", encoding="utf-8"
    )
    assert "&who;" in path.read_text(encoding="utf-8")

    result = _run_cli("check-xml", str(path))

    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "entity.xml" in result.stderr and "DTD" in result.stderr
    assert "line 2" in result.stderr
    assert "EXPANDED-ENTITY" not in result.stdout + result.stderr


def test_check_xml_refuses_files_that_are_not_utf8(
    runner: CliRunner, shared_dir: Path, tmp_path: Path
) -> None:
    text = (shared_dir / "cdc" / "examples" / "flux-pix-1.1.2.xml").read_text(encoding="utf-8")
    declared = tmp_path / "declared.xml"
    declared.write_bytes(
        text.replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="ISO-8859-1"?>')
        .replace(">12<", ">\u00e9t\u00e9<", 1)
        .encode("latin-1")
    )
    undeclared = tmp_path / "undeclared.xml"
    undeclared.write_bytes(text.replace(">12<", ">\u00e9t\u00e9<", 1).encode("latin-1"))
    utf16 = tmp_path / "utf16.xml"
    utf16.write_bytes(text.encode("utf-16"))

    result = runner.invoke(main, ["check-xml", str(declared), str(undeclared), str(utf16)])

    assert result.exit_code == 1
    assert "declared.xml: 1 error(s)" in result.stderr
    assert "declares encoding 'ISO-8859-1'" in result.stderr
    assert "undeclared.xml: 1 error(s)" in result.stderr
    assert "utf16.xml: 1 error(s)" in result.stderr
    assert result.stderr.count("save it as UTF-8") == 3
    assert "3 of 3 file(s) failed" in result.stderr


def test_check_xml_refuses_what_is_not_a_regular_file_without_waiting(
    shared_dir: Path, tmp_path: Path
) -> None:
    fifo = tmp_path / "pipe.xml"
    os.mkfifo(fifo)
    good = shared_dir / "cdc" / "examples" / "flux-pix-1.1.2.xml"

    result = _run_cli("check-xml", str(fifo), str(tmp_path), "/dev/zero", str(good))

    assert result.returncode == 1, result.stderr
    assert "pipe.xml: 1 error(s)" in result.stderr and "FIFO" in result.stderr
    assert "is a directory" in result.stderr
    assert "/dev/zero: 1 error(s)" in result.stderr and "character device" in result.stderr
    assert "flux-pix-1.1.2.xml: valid" in result.stdout
    # Nothing was checked: no schema is named (it named 1.1.2's, the default being 1.1.5).
    assert result.stderr.count("(not checked)") == 3 and "checked against" not in result.stderr


def test_check_xml_refuses_a_file_above_the_cdc_limit_before_reading_it(
    runner: CliRunner, tmp_path: Path
) -> None:
    huge = tmp_path / "huge.xml"
    with huge.open("wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)  # sparse: no disk used
    result = runner.invoke(main, ["check-xml", str(huge)])
    assert result.exit_code == 1
    assert f"above the {MAX_FILE_BYTES} byte limit" in result.stderr


def test_check_xml_reads_the_schema_version_of_each_file(
    runner: CliRunner, shared_dir: Path, tmp_path: Path
) -> None:
    v112 = shared_dir / "cdc" / "examples" / "flux-pix-1.1.2.xml"
    text = v112.read_text(encoding="utf-8")
    v115 = tmp_path / "v115.xml"
    v115.write_text(
        text.replace("</cpf:horodatage>", "</cpf:horodatage><cpf:action>CREATION</cpf:action>", 1),
        encoding="utf-8",
    )

    result = runner.invoke(main, ["check-xml", str(v115), str(v112)])

    assert result.exit_code == 0, result.output
    assert "v115.xml: valid (2 passages, cpf-1.1.5.xsd)" in result.stdout
    assert "flux-pix-1.1.2.xml: valid (2 passages, cpf-1.1.2.xsd)" in result.stdout
    forced = runner.invoke(main, ["check-xml", "--schema-version", "1.1.2", str(v115)])
    assert forced.exit_code == 1
    assert "element action" in forced.stderr


@pytest.mark.parametrize("after", ["</cpf:idFlux>", "</cpf:emetteur>"])
def test_check_xml_reads_an_action_wherever_the_flux_puts_it(
    runner: CliRunner, shared_dir: Path, tmp_path: Path, after: str
) -> None:
    """`flux`'s children come in any order (`xsd:all`): an `action` after `emetteur` made a
    1.1.5 file another tool wrote checked against 1.1.2, refused for its `action`."""
    text = (shared_dir / "cdc" / "examples" / "flux-pix-1.1.2.xml").read_text(encoding="utf-8")
    v115 = tmp_path / "v115.xml"
    v115.write_text(
        text.replace(after, f"{after}<cpf:action>CREATION</cpf:action>", 1), encoding="utf-8"
    )
    result = runner.invoke(main, ["check-xml", str(v115)])
    assert result.exit_code == 0, result.output
    assert "v115.xml: valid (2 passages, cpf-1.1.5.xsd)" in result.stdout


def test_a_comment_naming_an_action_makes_no_file_1_1_5(
    runner: CliRunner, shared_dir: Path, tmp_path: Path
) -> None:
    text = (shared_dir / "cdc" / "examples" / "flux-pix-1.1.2.xml").read_text(encoding="utf-8")
    commented = tmp_path / "commented.xml"
    commented.write_text(
        text.replace("</cpf:emetteur>", "</cpf:emetteur><!-- <cpf:action>CREATION -->", 1),
        encoding="utf-8",
    )
    result = runner.invoke(main, ["check-xml", str(commented)])
    assert result.exit_code == 0, result.output
    assert "valid (2 passages, cpf-1.1.2.xsd)" in result.stdout


def test_check_xml_refuses_more_passages_than_the_cdc_takes(
    runner: CliRunner, shared_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No XSD bounds the passages of a file; the CDC takes 200,000 at most (the limit is
    lowered here to the example's 2, so that the test writes no 200,000 passages)."""
    monkeypatch.setattr("accrochage.sinks.faults.CDC_MAX_PASSAGES", 1)
    example = shared_dir / "cdc" / "examples" / "flux-pix-1.1.2.xml"
    result = runner.invoke(main, ["check-xml", str(example)])
    assert result.exit_code == 1
    assert "2 passages: the CDC takes at most 1 in one file; split it" in result.stderr


def test_check_xml_reads_the_version_of_a_file_broken_further_on(
    runner: CliRunner, shared_dir: Path, tmp_path: Path
) -> None:
    """A syntax error in the file's first 64 KiB hid its `action`: a 1.1.5 file was checked
    against 1.1.2 and only 'element action: not expected' said, its real fault unsaid."""
    text = (shared_dir / "cdc" / "examples" / "flux-pix-1.1.2.xml").read_text(encoding="utf-8")
    text = text.replace(
        "</cpf:horodatage>", "</cpf:horodatage><cpf:action>CREATION</cpf:action>", 1
    )
    closing = text.index("</cpf:", text.index("<cpf:passageCertification"))
    broken = tmp_path / "broken.xml"
    broken.write_text(text[:closing] + "</cpf:mistyped>" + text[closing:], encoding="utf-8")
    result = runner.invoke(main, ["check-xml", str(broken)])
    assert result.exit_code == 1
    assert "cpf-1.1.5.xsd" in result.stderr and "element action" not in result.stderr
    assert "mismatch" in result.stderr.lower(), result.stderr


def test_check_xml_with_schema_115_refuses_a_112_file(runner: CliRunner, shared_dir: Path) -> None:
    example = shared_dir / "cdc" / "examples" / "flux-pix-1.1.2.xml"
    result = runner.invoke(main, ["check-xml", "--schema-version", "1.1.5", str(example)])
    assert result.exit_code == 1
    assert "action" in result.stderr


def test_check_xml_on_a_missing_file_fails(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["check-xml", str(tmp_path / "absent.xml")])
    assert result.exit_code != 0
    assert "absent.xml" in result.stderr


def test_check_xml_with_an_unreadable_xsd_is_a_configuration_error(
    runner: CliRunner, shared_dir: Path, tmp_path: Path
) -> None:
    bad_xsd = tmp_path / "bad.xsd"
    bad_xsd.write_text("<not-a-schema/>")
    example = shared_dir / "cdc" / "examples" / "flux-pix-1.1.2.xml"
    result = runner.invoke(main, ["check-xml", str(example), "--xsd", str(bad_xsd)])
    assert result.exit_code == 2
    assert "configuration error" in result.stderr and "bad.xsd" in result.stderr


def test_schema_prints_a_json_schema(runner: CliRunner) -> None:
    result = runner.invoke(main, ["schema"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    assert "$defs" in schema
    assert schema["$schema"].startswith("https://json-schema.org/")
    text = json.dumps(schema)
    for name in ("DeliveredEvent", "RevokedEvent", "Holder", "CpfFile"):
        assert name in schema["$defs"], name
    assert "PAR_SCORING" in text and "record_id" in text


def test_schema_writes_a_file(runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "event.schema.json"
    result = runner.invoke(main, ["schema", "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_text(encoding="utf-8") == event_json_schema_text()


@pytest.mark.parametrize("command", ["schema", "openapi"])
def test_a_path_that_cannot_be_written_is_one_line(
    runner: CliRunner, tmp_path: Path, command: str
) -> None:
    result = runner.invoke(main, [command, "-o", str(tmp_path / "no-such-folder" / "x.json")])
    assert result.exit_code == 1
    assert "cannot write" in result.output and "no-such-folder" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_the_committed_json_schema_does_not_drift() -> None:
    committed = (ROOT / "docs" / "event.schema.json").read_text(encoding="utf-8")
    assert committed == event_json_schema_text(), (
        "docs/event.schema.json is stale: regenerate it with "
        "`accrochage schema -o docs/event.schema.json`"
    )
