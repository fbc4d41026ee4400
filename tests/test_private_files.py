"""The files that hold personal data are not readable by other users of the machine.

The state (names, birth dates, NIRs), its `-wal` and `-shm`, its backups and the files for
the CDC are created with mode 0640 whatever the umask lets through (a stricter umask still
applies); `doctor` tells the operator about such a file any user may read (a state created
by an older version, a file copied under a loose umask).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_cli_tracker import recent, run, write_jsonl
from tests.test_tracker import processed_report, write_config


@pytest.fixture()
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def written_state(tmp_path: Path) -> tuple[Path, Path]:
    """A configuration and the state it wrote: two records, one written file."""
    config = write_config(tmp_path)
    events = write_jsonl(tmp_path / "events.jsonl", [recent("PV-1"), recent("PV-2")])
    run(config, "ingest", str(events))
    run(config, "flush", "--force")
    return config, tmp_path / "var" / "state.db"


@pytest.mark.parametrize(
    ("umask", "expected"), [(0o022, 0o640), (0o077, 0o600)], indirect=["umask"]
)
def test_the_state_its_files_and_its_backups_are_created_for_owner_and_group(
    tmp_path: Path, umask: int, expected: int
) -> None:
    config, state = written_state(tmp_path)
    assert mode(state) == expected
    for end in ("-wal", "-shm"):
        beside = state.with_name(state.name + end)
        if beside.exists():  # SQLite may have removed them as the last connection closed
            assert mode(beside) == expected, end
    xml = sorted((tmp_path / "var" / "outbox").rglob("*.xml"))
    assert xml and all(mode(path) == expected for path in xml)
    backup = tmp_path / "backup.db"
    run(config, "backup", str(backup))
    assert mode(backup) == expected


@pytest.mark.parametrize("umask", [0o022], indirect=True)
def test_the_copy_kept_of_a_cdc_report_is_for_owner_and_group(
    tmp_path: Path, shared_dir: Path, umask: int
) -> None:
    """A CDC message may quote what a passage held: the copy `import-report` keeps (for
    `evidence`) was created readable by every user."""
    config, _ = written_state(tmp_path)
    (xml,) = (tmp_path / "var" / "outbox").rglob("*.xml")
    batch_id = xml.stem.rsplit("_", 1)[-1]
    report = tmp_path / "report.xml"
    report.write_bytes(
        processed_report(shared_dir, file_name=xml.name, id_flux=batch_id, ok=["PV-1", "PV-2"])
    )
    run(config, "import-report", str(report))
    (kept,) = (tmp_path / "var" / "reports").glob("*_report.xml")
    assert mode(kept) == 0o640


def test_the_wal_of_a_live_state_has_the_state_s_mode(tmp_path: Path) -> None:
    from accrochage.state.sqlite.connection import connect

    previous = os.umask(0o022)
    try:
        state = tmp_path / "state.db"
        conn = connect(state)
        conn.execute("CREATE TABLE t (x)")
        conn.execute("INSERT INTO t VALUES (1)")
        assert mode(state) == 0o640
        assert mode(state.with_name("state.db-wal")) == 0o640
        assert mode(state.with_name("state.db-shm")) == 0o640
        conn.close()
    finally:
        os.umask(previous)


def exposed(config: Path) -> list[dict[str, object]]:
    """doctor's findings about files every user may read."""
    found = json.loads(run(config, "doctor", "--format", "json", code=None).stdout)
    return [f for f in found["findings"] if "every user" in str(f["message"])]


@pytest.mark.parametrize("umask", [0o022], indirect=True)
def test_doctor_tells_of_a_state_or_a_file_every_user_may_read(tmp_path: Path, umask: int) -> None:
    config, state = written_state(tmp_path)
    assert exposed(config) == []

    state.chmod(0o644)
    said = exposed(config)
    assert [(f["check"], f["level"], f["needs_operator"]) for f in said] == [
        ("state", "warning", True)
    ]
    assert "state.db" in str(said[0]["message"]) and "chmod o-rwx" in str(said[0]["message"])
    state.chmod(0o640)

    (xml,) = sorted((tmp_path / "var" / "outbox").rglob("*.xml"))
    xml.chmod(0o644)
    said = exposed(config)
    assert [(f["check"], f["level"], f["needs_operator"]) for f in said] == [
        ("outbox", "warning", True)
    ]
    assert xml.name in str(said[0]["message"])
    assert "PV-1" not in str(said[0]["message"])
