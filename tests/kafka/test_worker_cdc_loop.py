"""The CDC loop on Kafka (CONTRACT §9): a revocation and a correction sent on the topic after
the CDC accepted the records reach the same paths as everywhere else, and the worker's own timer
cuts the SUPPRESSION file, then the new CREATION file, while reports are imported beside it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from accrochage.sinks.profiles import PROFILES
from tests.factories import revoked_event
from tests.kafka.conftest import KafkaEndpoint
from tests.kafka.workers import Worker, WorkerConfig, query, send, write_worker_config
from tests.support.crash import child_env, cli_command
from tests.test_cli_tracker import recent
from tests.test_tracker import NS, passages, processed_report, replay

pytestmark = pytest.mark.kafka

START_TIMEOUT = 60.0
STEP_TIMEOUT = 60.0


def _wait(what: str, reached: Callable[[], bool], worker: Worker) -> None:
    began = time.monotonic()
    while not reached():
        assert worker.alive(), f"the worker died while waiting for {what}:\n{worker.tail()}"
        assert time.monotonic() - began < STEP_TIMEOUT, f"no {what} after {STEP_TIMEOUT:.0f}s"
        time.sleep(0.25)


def _written(state: Path, action: str, passages_: int) -> list[dict[str, Any]]:
    return [
        dict(r)
        for r in query(
            state,
            "SELECT * FROM batches WHERE action = ? AND state = 'written' AND passages = ?",
            (action, passages_),
        )
    ]


def _import(config: WorkerConfig, tmp_path: Path, shared_dir: Path, batch: dict[str, Any]) -> None:
    """`accrochage import-report` beside the running worker, as an operator would."""
    report = tmp_path / f"report-{batch['batch_id'][:8]}.xml"
    ids = [
        r[0]
        for r in query(
            config.state,
            "SELECT record_id FROM batch_members WHERE batch_id = ?",
            (batch["batch_id"],),
        )
    ]
    data = processed_report(
        shared_dir, file_name=batch["file_name"], id_flux=batch["batch_id"], ok=ids
    )
    report.write_bytes(data)
    done = subprocess.run(
        cli_command(config.path, "import-report", str(report)),
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, (done.stdout, done.stderr)


def _jsonl(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return path


async def test_revocation_and_correction_on_the_topic_go_through_suppression(
    kafka_broker: KafkaEndpoint, tmp_path: Path, shared_dir: Path, workers: list[Worker]
) -> None:
    config = write_worker_config(tmp_path / "worker", kafka_broker.bootstrap)
    state = config.state
    worker = Worker(config, tmp_path / "worker.log")
    workers.append(worker)
    await asyncio.to_thread(worker.wait_for_log, "Worker ready", START_TIMEOUT)

    revoked_one = recent("KQ-REV")
    corrected_one = recent("KQ-COR", score="100")
    await asyncio.to_thread(
        send, config, _jsonl(tmp_path / "a.jsonl", [revoked_one, corrected_one]), tmp_path / "a"
    )
    await asyncio.to_thread(
        _wait, "CREATION file", lambda: bool(_written(state, "CREATION", 2)), worker
    )
    (creation,) = _written(state, "CREATION", 2)
    await asyncio.to_thread(_import, config, tmp_path, shared_dir, creation)

    fixed = replay(corrected_one)
    fixed["score"] = "777"
    later = [revoked_event(record_id="KQ-REV", certifier="pix"), fixed]
    await asyncio.to_thread(send, config, _jsonl(tmp_path / "b.jsonl", later), tmp_path / "b")
    await asyncio.to_thread(
        _wait, "SUPPRESSION file", lambda: bool(_written(state, "SUPPRESSION", 2)), worker
    )
    (suppression,) = _written(state, "SUPPRESSION", 2)
    path = Path(suppression["file_path"])
    schema = etree.XMLSchema(etree.parse(str(PROFILES["1.1.5"].bundled_xsd)))
    assert schema.validate(etree.parse(str(path))), schema.error_log
    repeated = passages(path)
    assert repeated["KQ-COR"].findtext("cpf:scoring", namespaces=NS) == "100", "as sent"
    await asyncio.to_thread(_import, config, tmp_path, shared_dir, suppression)

    await asyncio.to_thread(
        _wait, "new CREATION file", lambda: bool(_written(state, "CREATION", 1)), worker
    )
    (again,) = _written(state, "CREATION", 1)
    found = passages(Path(again["file_path"]))
    assert set(found) == {"KQ-COR"}
    assert found["KQ-COR"].findtext("cpf:scoring", namespaces=NS) == "777"
    assert worker.stop() == 0, worker.tail()
    assert "Traceback" not in worker.text(), worker.tail(80)

    statuses = {r[0]: r[1] for r in query(state, "SELECT record_id, status FROM records")}
    assert statuses == {"KQ-REV": "withdrawn", "KQ-COR": "batched"}
