"""The file commands of the CLI: check-xml and schema, and the published JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from accrochage.cli import main
from accrochage.models.jsonschema import event_json_schema_text

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
    assert "PAR_HASARD" in result.stderr
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


def test_check_xml_stops_at_the_first_bad_file(
    runner: CliRunner, shared_dir: Path, tmp_path: Path
) -> None:
    good = shared_dir / "cdc" / "examples" / "flux-pix-1.1.2.xml"
    result = runner.invoke(main, ["check-xml", str(good), str(_broken(shared_dir, tmp_path))])
    assert result.exit_code == 1
    assert "flux-pix-1.1.2.xml: valid" in result.stdout
    assert "broken.xml" in result.stderr


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


def test_the_committed_json_schema_does_not_drift() -> None:
    committed = (ROOT / "docs" / "event.schema.json").read_text(encoding="utf-8")
    assert committed == event_json_schema_text(), (
        "docs/event.schema.json is stale: regenerate it with "
        "`accrochage schema -o docs/event.schema.json`"
    )
