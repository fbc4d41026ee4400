"""`ingest` beside a service serving the state (`run`, `worker`) stores `SHARED_CHUNK` events
a transaction and lets another writer in after each, so that the service's writer, storing a
platform's event, waits for one such transaction at most; with the state to itself, `CHUNK`
(fewer commits)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from accrochage.cli import main
from accrochage.commands.ingest import CHUNK, SHARED_CHUNK
from accrochage.settings import load_settings
from accrochage.state.sqlite import SqliteStore
from accrochage.state.sqlite.location import SqliteLocation
from accrochage.streams.ingest import Ingestor
from tests.test_read_only_user import service_holding
from tests.test_tracker import event, write_config


def events_file(path: Path, prefix: str, count: int) -> Path:
    path.write_text("".join(json.dumps(event(f"{prefix}-{i}")) + "\n" for i in range(count)))
    return path


def test_ingest_stores_smaller_transactions_while_a_service_serves_the_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path)
    state = load_settings(config).paths.state
    SqliteStore(state).close()
    groups: list[int] = []
    storing = Ingestor.ingest

    def counted(self: Ingestor, items: Any, *args: Any, **kwargs: Any) -> Any:
        groups.append(len(items))
        return storing(self, items, *args, **kwargs)

    monkeypatch.setattr(Ingestor, "ingest", counted)
    let_in: list[int] = []
    monkeypatch.setattr(SqliteStore, "let_writers_in", lambda self: let_in.append(len(groups)))
    count = 2 * SHARED_CHUNK + 200
    assert count <= CHUNK
    alone = events_file(tmp_path / "alone.jsonl", "A", count)
    done = CliRunner().invoke(main, ["--config", str(config), "ingest", str(alone)])
    assert done.exit_code == 0, done.output
    assert groups == [count] and let_in == []  # one transaction
    assert SqliteLocation(state).served_by() is None
    groups.clear()
    beside = events_file(tmp_path / "beside.jsonl", "B", count)
    with service_holding(state) as pid:
        assert SqliteLocation(state).served_by() == pid
        done = CliRunner().invoke(main, ["--config", str(config), "ingest", str(beside)])
    assert done.exit_code == 0, done.output
    assert groups == [SHARED_CHUNK, SHARED_CHUNK, 200]
    assert let_in == [1, 2, 3]  # another writer let in after each transaction
    assert f"accepted: {count}" in done.output
