"""Schema 1.1.5 by default: `accrochage doctor`, and the start-up guard of a 1.1.2 state.

doctor exits 1 when something needs the operator: an error, or a warning that asks for an
action (the bundled 1.1.5 XSD is a reconstruction: get the official one; reference data too
old; an alert firing). A warning that only informs (no state yet, no reference data
configured) leaves it at 0.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from lxml import etree

from accrochage.app import build_core
from accrochage.cli import main
from accrochage.errors import ConfigError
from accrochage.refdata.load import load_refdata
from accrochage.settings import load_settings
from accrochage.sinks.gate import check_file
from accrochage.sinks.profiles import PROFILES
from accrochage.streams import doctor_state
from tests.factories import HOLDER_NIR
from tests.refdata_files import fc, refdata_dir
from tests.support.holding import holding
from tests.test_cdc_loop import accepted, answer, flush, only_written
from tests.test_cli_tracker import recent
from tests.test_tracker import (
    NO_HOLDER,
    NS,
    SCHEMA_1_1_2,
    assert_official_valid,
    event,
    ingest,
    make_core,
    passages,
    replay,
    write_config,
    xml_files,
)
from tests.test_write_lock import held, release

__all__ = ["refdata_dir"]  # a fixture

BUNDLED_1_1_5 = PROFILES["1.1.5"].bundled_xsd


def doctor(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(config), "doctor", *args])


def doctor_json(config: Path, code: int) -> dict[str, Any]:
    result = doctor(config, "--format", "json")
    assert result.exit_code == code, (result.stdout, result.stderr)
    shown = json.loads(result.stdout)
    assert isinstance(shown, dict)
    return shown


def findings(shown: dict[str, Any], check: str) -> list[dict[str, Any]]:
    return [f for f in shown["findings"] if f["check"] == check]


def with_state(directory: Path, **sections: Any) -> Path:
    """A configuration and its state, created empty by building the core once."""
    config = write_config(directory, **sections)
    core, _ = make_core(directory, **sections)
    core.close()
    return config


def wrote_1_1_2_files(directory: Path) -> None:
    """An installation of before: its configuration named 1.1.2 and it wrote files."""
    core, _ = make_core(directory, schema=SCHEMA_1_1_2)
    ingest(core, event("PX-OLD"))
    assert core.flusher.flush(force=True).written
    core.close()


# --- doctor -----------------------------------------------------------------------------------


def test_the_bundled_1_1_5_xsd_is_a_reconstruction_that_needs_the_operator(
    tmp_path: Path,
) -> None:
    config = with_state(tmp_path)
    shown = doctor_json(config, code=1)
    assert shown["needs_operator"] is True
    [schema] = findings(shown, "schema")
    assert schema["level"] == "ok" and "1.1.5 (the default" in schema["message"]
    [xsd] = findings(shown, "xsd")
    assert (xsd["level"], xsd["needs_operator"]) == ("warning", True)
    assert "RECONSTRUCTION" in xsd["message"]
    assert "certificateurs.moncompteformation.gouv.fr" in xsd["message"]
    assert "schema.xsd" in xsd["message"]
    # everything else is fine: only the reconstruction asks for the operator
    assert [f["check"] for f in shown["findings"] if f["needs_operator"]] == ["xsd"]
    [state] = findings(shown, "state")
    assert state["level"] == "ok" and "quick_check) ok" in state["message"]
    assert "migration(s) applied" in state["message"]

    text = doctor(config)
    assert text.exit_code == 1
    assert "WARNING  xsd" in text.stdout and "1 finding(s) need the operator" in text.stdout


def test_an_official_like_xsd_named_by_schema_xsd_gates_the_files_and_doctor_is_content(
    tmp_path: Path,
) -> None:
    kit = tmp_path / "kit" / "certifications-cdc.xsd"
    kit.parent.mkdir()
    shutil.copy(BUNDLED_1_1_5, kit)
    config = with_state(tmp_path, schema={"xsd": kit})
    shown = doctor_json(config, code=0)
    assert shown["needs_operator"] is False
    [xsd] = findings(shown, "xsd")
    assert xsd["level"] == "ok" and str(kit) in xsd["message"]
    assert "version 1.1.5" in xsd["message"]
    assert "RECONSTRUCTION" not in json.dumps(shown)
    [refdata] = findings(shown, "refdata")  # none configured: it informs, asks for nothing
    assert (refdata["level"], refdata["needs_operator"]) == ("warning", False)
    assert doctor(config).stdout.rstrip().endswith("nothing needs the operator")


def test_the_official_1_1_2_xsd_with_version_1_1_2(tmp_path: Path, official_xsd: Path) -> None:
    kit = tmp_path / "cpf-1.1.2.xsd"
    shutil.copy(official_xsd, kit)
    config = with_state(tmp_path, schema={"version": "1.1.2", "xsd": kit})
    shown = doctor_json(config, code=0)
    [xsd] = findings(shown, "xsd")
    assert xsd["level"] == "ok" and "version 1.1.2" in xsd["message"]


def test_the_bundled_1_1_2_xsd_is_the_projects_own_checked_by_the_tests(tmp_path: Path) -> None:
    config = with_state(tmp_path, schema=SCHEMA_1_1_2)
    shown = doctor_json(config, code=0)
    [schema] = findings(shown, "schema")
    assert "1.1.2 (named in the configuration)" in schema["message"]
    [xsd] = findings(shown, "xsd")
    assert xsd["level"] == "ok" and "project's own schema" in xsd["message"]


def test_an_xsd_of_another_version_than_schema_version_needs_the_operator(
    tmp_path: Path, official_xsd: Path
) -> None:
    with_state(tmp_path)  # a command would stop on this configuration: doctor says why
    config = write_config(tmp_path, schema={"xsd": official_xsd})  # 1.1.2's, version 1.1.5
    [xsd] = findings(doctor_json(config, code=1), "xsd")
    # An error, as for every other command, which refuses to start (it was a warning).
    assert (xsd["level"], xsd["needs_operator"]) == ("error", True)
    assert "declares version 1.1.2 but schema.version is 1.1.5" in xsd["message"]


def test_a_missing_xsd_file_is_an_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, schema={"version": "1.1.5", "xsd": tmp_path / "nope.xsd"})
    [xsd] = findings(doctor_json(config, code=1), "xsd")
    assert xsd["level"] == "error" and "not a file" in xsd["message"]


def test_no_state_yet_informs_without_creating_one(tmp_path: Path) -> None:
    kit = tmp_path / "certifications-cdc.xsd"
    shutil.copy(BUNDLED_1_1_5, kit)
    config = write_config(tmp_path, schema={"xsd": kit})
    shown = doctor_json(config, code=0)
    [state] = findings(shown, "state")
    assert (state["level"], state["needs_operator"]) == ("warning", False)
    assert "no state" in state["message"]
    assert not (tmp_path / "var" / "state.db").exists()


def test_a_lost_state_beside_an_outbox_of_files_names_the_restore(tmp_path: Path) -> None:
    """The state deleted (a lost disk), its outbox intact: doctor said "no state yet:
    `ingest`, `flush` and `run` create it" and needed nothing, so the next start made an
    empty state knowing none of the files, deposited or not, instead of a restore."""
    kit = tmp_path / "certifications-cdc.xsd"
    shutil.copy(BUNDLED_1_1_5, kit)
    config = write_config(tmp_path, schema={"xsd": kit})
    core, _ = make_core(tmp_path, schema={"xsd": kit})
    ingest(core, event("LOST-1"))
    only_written(flush(core))
    core.close()
    for leftover in (tmp_path / "var").glob("state.db*"):
        leftover.unlink()
    shown = doctor_json(config, code=1)
    [lost] = [f for f in findings(shown, "state") if f["needs_operator"]]
    assert lost["level"] == "error"
    assert "accrochage restore BACKUP" in lost["message"], lost
    assert not (tmp_path / "var" / "state.db").exists()


def test_no_state_yet_where_it_cannot_be_created_needs_the_operator(tmp_path: Path) -> None:
    """The first day's doctor: a state and an outbox under a file (a mistyped path, a
    volume not mounted) cannot be created, and `ingest`, `flush`, `run` would fail."""
    kit = tmp_path / "certifications-cdc.xsd"
    shutil.copy(BUNDLED_1_1_5, kit)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    paths = {"state": blocker / "state.db", "outbox": blocker / "outbox"}
    config = write_config(tmp_path, schema={"xsd": kit}, paths=paths)
    shown = doctor_json(config, code=1)
    cannot = [f for f in findings(shown, "state") if f["needs_operator"]]
    assert [f["level"] for f in cannot] == ["warning"], shown
    assert "paths.state" in cannot[0]["message"] and "cannot be created" in cannot[0]["message"]
    [outbox] = findings(shown, "outbox")
    assert outbox["needs_operator"] and "cannot be created" in outbox["message"]


def test_a_configuration_holding_a_token_that_every_user_may_read_needs_the_operator(
    tmp_path: Path,
) -> None:
    """`cp accrochage.example.toml accrochage.toml` under the usual umask: any user of the
    machine read the operator's token, and with it every record's personal data."""
    config = write_config(tmp_path, api={"token": "o" * 40})
    config.chmod(0o644)
    [found] = findings(doctor_json(config, code=1), "config")
    assert found["needs_operator"] and "holds api.token" in found["message"]
    assert "o" * 40 not in found["message"]
    config.chmod(0o640)
    assert findings(doctor_json(config, code=1), "config") == []
    (tmp_path / "no-secret").mkdir()
    without = write_config(tmp_path / "no-secret")
    without.chmod(0o644)
    assert findings(doctor_json(without, code=1), "config") == []


def test_a_damaged_state_is_an_error(tmp_path: Path) -> None:
    config = with_state(tmp_path, schema=SCHEMA_1_1_2)
    (tmp_path / "var" / "state.db").write_bytes(b"certainly not SQLite " * 500)
    shown = doctor_json(config, code=1)
    [state] = findings(shown, "state")
    assert state["level"] == "error" and "is damaged" in state["message"]
    assert "backup" in state["message"]


@pytest.mark.timeout(300)
def test_a_stopped_writer_holding_the_state_is_named_with_how_to_resume_it(
    tmp_path: Path,
) -> None:
    config = with_state(tmp_path, schema=SCHEMA_1_1_2)
    state = tmp_path / "var" / "state.db"
    with held(state, stopped=True) as holder:
        shown = doctor_json(config, code=1)
    [stopped] = [f for f in findings(shown, "state") if "write lock" in f["message"]]
    assert (stopped["level"], stopped["needs_operator"]) == ("error", True)
    assert f"process {holder.pid} holds" in stopped["message"]
    assert f"kill -CONT {holder.pid}" in stopped["message"]
    with held(state) as holder:
        shown = doctor_json(config, code=0)
        [writing] = [f for f in findings(shown, "state") if "writing the state" in f["message"]]
        assert (writing["level"], writing["needs_operator"]) == ("ok", False)
        assert f"process {holder.pid} is writing" in writing["message"]
        release(holder)
    shown = doctor_json(config, code=0)
    messages = [f["message"] for f in findings(shown, "state")]
    assert not [m for m in messages if "write lock" in m or "writing the state" in m]


READER = textwrap.dedent(
    """
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN")
    conn.execute("SELECT count(*) FROM records").fetchone()  # a snapshot, kept
    print("reading", flush=True)
    sys.stdin.read()
    """
)
"""Another process reading the state (a backup under way), until its standard input closes."""


def test_a_write_ahead_log_that_cannot_start_over_names_the_processes_reading_the_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past `LOG_GROWN_BYTES` (256 MiB, what a reader holding old pages lets it reach), doctor
    names the other processes that have the state open, by pid; the threshold is lowered
    here under the -wal a writer's commits leave."""
    config = with_state(tmp_path, schema=SCHEMA_1_1_2)
    core, _ = make_core(tmp_path, schema=SCHEMA_1_1_2)  # a writer: its -wal stays while open
    state = tmp_path / "var" / "state.db"
    try:
        with holding(READER, str(state), ready="reading") as reader:
            ingest(core, event("PX-1"))
            size = (tmp_path / "var" / "state.db-wal").stat().st_size
            shown = doctor_json(config, code=0)
            assert not [f for f in findings(shown, "state") if "write-ahead" in f["message"]]
            monkeypatch.setattr(doctor_state, "LOG_GROWN_BYTES", size - 1)
            shown = doctor_json(config, code=1)
            [grown] = [f for f in findings(shown, "state") if "write-ahead" in f["message"]]
            assert (grown["level"], grown["needs_operator"]) == ("warning", True)
            assert f"{size / 1e6:.0f} MB" in grown["message"]
            assert f"processes {reader.pid} have the state open" in grown["message"]
            assert "ps -o args=" in grown["message"]
            release(reader)
            # Only this process (the writer, doctor) has it open now: the next write cuts it
            # back.
            shown = doctor_json(config, code=0)
            [gone] = [f for f in findings(shown, "state") if "write-ahead" in f["message"]]
            assert gone["level"] == "ok"
            assert "no other process has the state open" in gone["message"]
    finally:
        core.close()


def test_old_reference_data_needs_the_operator(tmp_path: Path, refdata_dir: Path) -> None:
    config = with_state(tmp_path, schema=SCHEMA_1_1_2)
    core = build_core(load_settings(config))
    try:
        load_refdata(core.store.refdata(), fc(refdata_dir), None)
    finally:
        core.close()
    refdata = findings(doctor_json(config, code=1), "refdata")
    old = [f for f in refdata if "days old" in f["message"]]
    assert old and old[0]["level"] == "warning" and old[0]["needs_operator"]
    assert "accrochage refdata load" in old[0]["message"]


def test_configured_reference_data_never_loaded_needs_the_operator(
    tmp_path: Path, refdata_dir: Path
) -> None:
    config = with_state(tmp_path, schema=SCHEMA_1_1_2)
    text = config.read_text(encoding="utf-8")
    config.write_text(text + f'\n[refdata]\nrncp = "{fc(refdata_dir)}"\n', encoding="utf-8")
    [refdata] = findings(doctor_json(config, code=1), "refdata")
    assert refdata["needs_operator"] and "refdata.rncp is set" in refdata["message"]


def test_firing_alerts_and_files_are_counted_without_personal_data(tmp_path: Path) -> None:
    config = with_state(tmp_path, schema=SCHEMA_1_1_2)
    core = build_core(load_settings(config))
    sent = event("PX-1", delivered_on="2026-01-05")  # long overdue by the real clock
    ingest(core, sent)
    core.flusher.flush(force=True)
    core.close()
    result = doctor(config, "--format", "json")
    shown = json.loads(result.stdout)
    assert result.exit_code == 1
    [files] = findings(shown, "files")
    assert files["message"].startswith("1 file(s) to deposit")
    alerts = findings(shown, "alerts")
    assert alerts and all(a["needs_operator"] for a in alerts)
    by_name = {a["message"].split(" ", 1)[0]: a["message"] for a in alerts}
    assert by_name["AccrochageRecordsOverdue"].endswith(
        "see `accrochage outstanding --certifier pix`"
    )
    holder = sent["holder"]
    for value in (holder["birth_name"], holder["first_names"][0], holder["birth_date"]):
        assert value not in result.stdout


def test_each_alert_names_the_command_that_lists_what_fires_it(tmp_path: Path) -> None:
    """A correction request's alert sent the operator to `outstanding` and `batches`, which
    do not list a request on a record not yet known."""
    config = with_state(tmp_path)
    core = build_core(load_settings(config))
    core.corrections.add("UNKNOWN-2", date(2026, 1, 5))  # long overdue by the real clock
    core.close()
    (alert,) = findings(doctor_json(config, 1), "alerts")
    assert alert["message"].startswith("AccrochageCorrectionRequestAtRisk (warning)")
    assert alert["message"].endswith("see `accrochage correction-request list --open`")


def test_files_to_deposit_missing_from_the_outbox_need_the_operator(tmp_path: Path) -> None:
    """A state restored without its outbox, or a file moved out of it: doctor said `ok files
    1 file(s) to deposit` and never looked."""
    config = with_state(tmp_path, schema=SCHEMA_1_1_2)
    core = build_core(load_settings(config))
    ingest(core, event("PX-2"), event("PX-3", certifier="school"))
    written = core.flusher.flush(force=True).written
    core.close()
    [there] = findings(doctor_json(config, 0), "outbox")
    assert there["level"] == "ok" and "the 2 file(s) to deposit are there" in there["message"]
    written[0].path.unlink()
    [gone] = findings(doctor_json(config, 1), "outbox")
    assert (gone["level"], gone["needs_operator"]) == ("warning", True)
    assert gone["message"].startswith("1 of the 2 file(s) to deposit are missing")
    assert written[0].path.name in gone["message"] and "accrochage flush" in gone["message"]


def test_an_outbox_no_file_can_be_written_in_is_said(tmp_path: Path) -> None:
    """`paths.outbox` naming a file: doctor said `ok`, while `flush` failed and `run` refused
    to start. A missing outbox under a file cannot be created either. Nothing is created to
    find out."""
    afile = tmp_path / "afile"
    afile.write_text("not a folder", encoding="utf-8")
    for folder in "abc":
        (tmp_path / folder).mkdir()
    config = with_state(tmp_path / "a", paths={"outbox": afile}, schema=SCHEMA_1_1_2)
    [said] = findings(doctor_json(config, 1), "outbox")
    assert (said["level"], said["needs_operator"]) == ("error", True)
    assert f"paths.outbox {afile} is not a folder" in said["message"]
    below = afile / "outbox"
    config = with_state(tmp_path / "b", paths={"outbox": below}, schema=SCHEMA_1_1_2)
    [said] = findings(doctor_json(config, 1), "outbox")
    assert said["level"] == "warning"
    assert "does not exist and cannot be created by this user" in said["message"]
    assert afile.read_text(encoding="utf-8") == "not a folder"
    missing = tmp_path / "c" / "var" / "not-yet"
    config = with_state(tmp_path / "c", paths={"outbox": missing}, schema=SCHEMA_1_1_2)
    [fine] = findings(doctor_json(config, 0), "outbox")
    assert fine["level"] == "ok" and not missing.exists()


def test_certifiers_the_configuration_identifies_as_one_are_said(tmp_path: Path) -> None:
    """A [[certifiers]] section copied and not all its identifiers changed: the second
    certifier's passages went out under the first one's contract, and doctor said nothing.
    A depositor for others only, its nature left to CERTIFICATEUR, neither."""
    config = with_state(tmp_path, schema=SCHEMA_1_1_2)
    text = config.read_text(encoding="utf-8")

    def written_with(old: str, new: str) -> str:
        changed = text.replace(old, new)
        assert changed != text
        config.write_text(changed, encoding="utf-8")
        return changed

    written_with(
        '"12ABC345"\nid_contrat = "MCFCER000123"', '"03VML243"\nid_contrat = "MCFCER000209"'
    )
    [same] = findings(doctor_json(config, 1), "certifiers")
    assert same["needs_operator"] and same["level"] == "warning"
    assert same["message"].startswith("certifiers pix, school have the same idClient and idContrat")
    third = written_with(
        '"03VML243"\nnature = "CERTIFICATEUR"', '"99ZZZ999"\nnature = "CERTIFICATEUR"'
    )
    [nature] = findings(doctor_json(config, 1), "certifiers")
    assert nature["needs_operator"] and 'nature = "TIERS_CONFIANCE"' in nature["message"]
    config.write_text(third.replace('"CERTIFICATEUR"', '"TIERS_CONFIANCE"'), encoding="utf-8")
    assert findings(doctor_json(config, 0), "certifiers") == []


def test_records_of_a_certifier_taken_out_of_the_configuration_are_said(tmp_path: Path) -> None:
    """A certifier removed (or its key renamed) with records waiting: doctor said ok, and
    its records were never sent."""
    config = with_state(tmp_path, schema=SCHEMA_1_1_2)
    core = build_core(load_settings(config))
    ingest(
        core, event("PX-9"), event("SC-9", certifier="school"), event("SC-10", certifier="school")
    )
    core.close()
    assert not [f for f in findings(doctor_json(config, 0), "certifiers") if f["needs_operator"]]
    text = config.read_text(encoding="utf-8")
    school = text[text.index('[[certifiers]]\nkey = "school"') :].split("\n\n")[0]
    config.write_text(text.replace(school, ""), encoding="utf-8")
    [gone] = [f for f in findings(doctor_json(config, 1), "certifiers") if f["needs_operator"]]
    assert "does not have wait for the CDC: school (2)" in gone["message"]


def test_records_of_a_certifier_taken_out_in_a_written_file_are_told_apart(
    tmp_path: Path,
) -> None:
    """A trusted third party whose mandate for a certifier ended, that certifier's file
    written and not deposited yet: doctor counted its records among those `no file is written
    for`, to take out with `exclude`, which refuses every one of them (the CDC may hold
    them)."""
    config = with_state(tmp_path, schema=SCHEMA_1_1_2)
    core = build_core(load_settings(config))
    ingest(core, event("SC-9", certifier="school"), event("SC-10", certifier="school"))
    assert len(core.flusher.flush(force=True).written) == 1
    ingest(core, event("SC-11", certifier="school"))
    core.close()
    text = config.read_text(encoding="utf-8")
    school = text[text.index('[[certifiers]]\nkey = "school"') :].split("\n\n")[0]
    config.write_text(text.replace(school, ""), encoding="utf-8")
    gone = [f["message"] for f in findings(doctor_json(config, 1), "certifiers")]
    [unsent] = [m for m in gone if "no file is written for them" in m]
    assert "wait for the CDC: school (1);" in unsent
    [in_files] = [m for m in gone if "in files written" in m]
    assert "school (2)" in in_files and "`accrochage batches --certifier KEY`" in in_files


# --- the start-up guard -----------------------------------------------------------------------


def test_a_state_of_1_1_2_files_refuses_a_configuration_that_names_no_version(
    tmp_path: Path,
) -> None:
    wrote_1_1_2_files(tmp_path)
    unnamed = load_settings(write_config(tmp_path))
    with pytest.raises(ConfigError) as refused:
        build_core(unnamed)
    message = str(refused.value)
    assert "holds files written with schema 1.1.2" in message
    assert "default schema is now 1.1.5" in message
    assert '[schema] version = "1.1.2"' in message and 'version = "1.1.5"' in message
    assert "SUPPRESSION" in message  # what switching means

    config = write_config(tmp_path)
    for command in (["flush"], ["outstanding"], ["ingest", "-"]):
        result = CliRunner().invoke(main, ["--config", str(config), *command], input="")
        assert result.exit_code == 2, (command, result.stdout, result.stderr)
        assert "holds files written with schema 1.1.2" in result.stderr

    # The error alone: an "ok ... 1.1.5 (the default)" beside it contradicted it.
    [guard] = findings(doctor_json(config, code=1), "schema")
    assert guard["level"] == "error" and 'version = "1.1.2"' in guard["message"]


def test_a_named_version_lets_a_1_1_2_state_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, official_xsd: Path
) -> None:
    wrote_1_1_2_files(tmp_path)
    kept, _ = make_core(tmp_path, schema=SCHEMA_1_1_2)
    ingest(kept, event("PX-KEPT"))
    [file_112] = kept.flusher.flush(force=True).written
    kept.close()
    assert_official_valid([file_112.path], official_xsd)

    monkeypatch.setenv("ACCROCHAGE_SCHEMA__VERSION", "1.1.5")  # named by the environment
    switched = build_core(load_settings(write_config(tmp_path)))
    ingest(switched, event("PX-NEW"))
    [file_115] = switched.flusher.flush(force=True).written
    switched.close()
    assert check_file(file_115.path, BUNDLED_1_1_5).passages == 1
    assert "<cpf:action>CREATION</cpf:action>" in file_115.path.read_text(encoding="utf-8")


def test_a_fresh_state_takes_the_default_and_writes_files_the_bundled_1_1_5_xsd_accepts(
    tmp_path: Path,
) -> None:
    core, _ = make_core(tmp_path)
    assert core.settings.schema_.version == "1.1.5"
    with_nir = event("PX-1")
    with_nir["holder"]["nir"] = HOLDER_NIR
    ingest(core, with_nir, event("SC-1", certifier="school"))
    assert len(core.flusher.flush(force=True).written) == 2
    core.close()
    branches = {}
    for path in xml_files(tmp_path / "var" / "outbox"):
        assert check_file(path, BUNDLED_1_1_5).passages == 1
        assert "<cpf:action>CREATION</cpf:action>" in path.read_text(encoding="utf-8")
        [(record_id, passage)] = passages(path).items()
        branch = passage.find("cpf:identificationTitulaire/*", NS)
        assert branch is not None
        branches[record_id] = etree.QName(branch).localname
    assert branches == {"PX-1": "identifiantNational", "SC-1": "titulaire"}
    again = build_core(load_settings(write_config(tmp_path)))  # 1.1.5 files only: no guard
    again.close()


def test_a_record_the_cdc_deleted_then_refused_needs_the_operator(
    tmp_path: Path, shared_dir: Path
) -> None:
    """Accepted, corrected, its SUPPRESSION accepted, its corrected content refused: the CDC
    holds nothing of the certification, and no deadline warns (the delivery's was met)."""
    config = with_state(tmp_path)
    core = build_core(load_settings(config))
    try:
        original = recent("DR-1", score="100")
        accepted(core, shared_dir, original, recent("DR-2"))
        fixed = replay(original)
        fixed["score"] = "250"
        ingest(core, fixed)
        suppression, _ = only_written(flush(core))
        answer(core, shared_dir, suppression, ok=["DR-1"])
        creation, _ = only_written(flush(core))
        answer(core, shared_dir, creation, ko={"DR-1": NO_HOLDER})
    finally:
        core.close()
    (found,) = [f for f in findings(doctor_json(config, 1), "reports") if "deleted" in f["message"]]
    assert found["needs_operator"] and "first: DR-1" in found["message"]
    assert found["message"].startswith("1 record(s) the CDC accepted once")


def test_a_mandating_certifier_set_to_certificateur_is_told_to_take_that_line_out(
    tmp_path: Path,
) -> None:
    """A trusted third party (its [emitter] nature TIERS_CONFIANCE) that set nature =
    "CERTIFICATEUR" on a certifier it deposits for: doctor told it to set the emitter's
    nature to TIERS_CONFIANCE, which it already was, and exited 1 until... never."""
    config = with_state(tmp_path, schema=SCHEMA_1_1_2, emitter_id="99ZZZ999")
    text = config.read_text(encoding="utf-8").replace(
        'nature = "CERTIFICATEUR"', 'nature = "TIERS_CONFIANCE"'
    )
    mistaken = text.replace(
        'id_contrat = "MCFCER000123"', 'id_contrat = "MCFCER000123"\nnature = "CERTIFICATEUR"'
    )
    config.write_text(mistaken, encoding="utf-8")
    [nature] = findings(doctor_json(config, 1), "certifiers")
    assert nature["needs_operator"]
    assert nature["message"].startswith("the files of school say natureDeposant CERTIFICATEUR")
    assert "[emitter] nature" not in nature["message"]
    assert 'take nature = "CERTIFICATEUR" out of those tables' in nature["message"]
    config.write_text(text, encoding="utf-8")
    assert findings(doctor_json(config, 0), "certifiers") == []


def test_a_certifier_of_the_emitter_s_id_set_to_tiers_confiance_is_said_with_that_nature(
    tmp_path: Path,
) -> None:
    """The emitter CERTIFICATEUR, its own certifier's table nature = "TIERS_CONFIANCE":
    doctor said its files say CERTIFICATEUR (the emitter's), which they do not."""
    config = with_state(tmp_path, schema=SCHEMA_1_1_2)
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace(
            'id_contrat = "MCFCER000209"', 'id_contrat = "MCFCER000209"\nnature = "TIERS_CONFIANCE"'
        ),
        encoding="utf-8",
    )
    said = [f["message"] for f in findings(doctor_json(config, 0), "certifiers")]
    (own,) = [m for m in said if m.startswith("the files of pix")]
    assert own.startswith("the files of pix say natureDeposant TIERS_CONFIANCE, but they")
