"""No personal data in any log line, stdout or stderr of a whole run.

The run is what an operator and an exam platform do, through real processes: ingest a file
(valid, invalid and unusable events), flush against an XSD that refuses the holders' names,
serve HTTP (events, one with a lone surrogate, queries, a malformed request carrying a token),
let the timer fail on the same XSD, import a CDC report, list what is outstanding. Every
birth name, usage name, first name, birth date and NIR the run sent is then looked for in
everything the processes printed. The HTTP answers themselves are the operator's and are not
scanned; `outstanding`'s output is.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from accrochage.generate import GeneratedCertifier, generate_events
from tests.factories import TODAY
from tests.test_outbox_integrity import _stricter_xsd
from tests.test_service_process import cli, free_port, wait_healthy
from tests.test_tracker import write_config

TOKEN = "operator-token-for-the-scan-0123456789"


def personal_values(events: list[dict[str, Any]]) -> set[str]:
    """Every name, birth date and NIR of the events (values of 4 characters or more)."""
    found: set[str] = set()
    for event in events:
        holder = event.get("holder") or {}
        for key in ("birth_name", "usage_name", "nir", "birth_date"):
            if isinstance(holder.get(key), str):
                found.add(holder[key])
        found.update(n for n in holder.get("first_names") or [] if isinstance(n, str))
        cpf = event.get("cpf_file") or {}
        found.update(v for k, v in cpf.items() if k.startswith("holder") and isinstance(v, str))
    return {v for v in found if len(v) >= 4}


def named(events: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    renamed = []
    for i, event in enumerate(events):
        event = json.loads(json.dumps(event))
        event["record_id"] = f"{prefix}-{i:03d}"
        holder = event.get("holder")
        if isinstance(holder, dict):
            holder["birth_name"] = f"Zorglubova{prefix}{i}"
            holder["first_names"] = [f"Philibertine{prefix}{i}"]
        renamed.append(event)
    return renamed


def report_for(batch_file: str, batch_id: str, ids: list[str]) -> bytes:
    ko = "".join(
        f"<passage><idTechnique>{rid}</idTechnique><messageErreur>Aucun titulaire ne "
        "correspond aux critères obligatoires</messageErreur></passage>"
        for rid in ids[:2]
    )
    ok = "".join(f"<idTechnique>{rid}</idTechnique>" for rid in ids[2:])
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rapport>'
        f"<nomFichier>{batch_file}</nomFichier><idFlux>{batch_id}</idFlux>"
        f"<idTraitement>7</idTraitement><PassagesKO>{ko}</PassagesKO>"
        f"<PassagesOK>{ok}</PassagesOK></rapport>"
    ).encode()


async def _timer_failed(session: aiohttp.ClientSession, url: str) -> bool:
    """Whether the batch timer cut the record's batch and the stricter XSD failed it (the
    log then holds the schema's messages about the events sent over HTTP), within 60 s."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        async with session.get(url) as response:
            record = await response.json()
        if any(batch["state"] == "failed" for batch in record["batches"]):
            return True
        await asyncio.sleep(0.2)
    return False


async def serve_and_poke(config: Path, port: int, events: list[dict[str, Any]], log: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        service = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "accrochage",
                "--config",
                str(config),
                "run",
                "--log-level",
                "DEBUG",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        await wait_healthy(base, service)
        async with aiohttp.ClientSession(headers=auth) as session:
            for event in events:
                async with session.post(f"{base}/events", json=event) as response:
                    assert response.status in (201, 422), await response.text()
            poisoned = json.dumps(events[0] | {"record_id": "HTTP-SURROGATE"})
            poisoned = poisoned.replace('"Zorglubova', '"\\ud800Zorglubova')
            async with session.post(
                f"{base}/events", data=poisoned, headers={"Content-Type": "application/json"}
            ) as response:
                assert response.status == 422
            for path in ("/records", "/summary", "/batches", "/unusable", "/records/HTTP-000"):
                async with session.get(f"{base}{path}") as response:
                    assert response.status == 200, path
            assert await _timer_failed(session, f"{base}/records/HTTP-000"), (
                "the timer never cut and failed the events sent over HTTP"
            )
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"GET /records HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\x01\r\n"
            f"X-Holder: {events[0]['holder']['birth_name']}\x02\r\n\r\n".encode()
        )
        await writer.drain()
        await asyncio.wait_for(reader.read(), timeout=30)
        writer.close()
    finally:
        service.send_signal(signal.SIGTERM)
        assert service.wait(timeout=60) == 0


def test_no_log_or_output_carries_a_name_a_birth_date_or_a_nir(tmp_path: Path) -> None:
    certifiers = [GeneratedCertifier("pix", ("RS5875", "RNCP37873"))]
    generated = list(generate_events(60, certifiers, today=TODAY, seed=17))
    from_file = named(generated[:40], "FILE")
    from_file[0]["holder"]["birth_date"] = "1899-13-45"  # invalid: kept with its error
    from_file[1].pop("record_id")  # unusable: kept in the unusable log
    over_http = named(generated[40:], "HTTP")
    secrets = personal_values(from_file + over_http)
    assert len(secrets) > 100

    port = free_port()
    strict = write_config(
        tmp_path,
        api={"bind": f"127.0.0.1:{port}", "token": TOKEN},
        batching={"tick": "1s", "max_delay": "1s"},
    )
    with strict.open("a", encoding="utf-8") as handle:
        handle.write(f'\n[schema]\nversion = "1.1.5"\nxsd = "{_stricter_xsd(tmp_path)}"\n')
    lenient = tmp_path / "lenient.toml"
    lenient.write_text(
        strict.read_text(encoding="utf-8").split("\n[schema]")[0]
        + '\n[schema]\nversion = "1.1.5"\n',
        encoding="utf-8",
    )
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in from_file), encoding="utf-8")

    outputs: list[str] = []

    def run(config: Path, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
        done = cli(config, *args)
        outputs.extend([done.stdout, done.stderr])
        assert done.returncode == expect, (args, done.stdout[-500:], done.stderr[-500:])
        return done

    run(strict, "ingest", str(events))
    failed = run(strict, "flush", "--force", expect=1)
    assert "FAILED" in failed.stderr and "nomNaissance" in failed.stderr
    service_log = tmp_path / "service.log"
    asyncio.run(serve_and_poke(strict, port, over_http, service_log))
    logged = service_log.read_text(encoding="utf-8", errors="replace")
    assert "nomNaissance" in logged, "the timer's failing XSD left nothing in the log"
    outputs.append(logged)

    written = run(lenient, "flush", "--force")
    batch_line = next(line for line in written.stdout.splitlines() if line.startswith("wrote "))
    batch_file = Path(batch_line.split()[1]).name
    batch_id = batch_file.rsplit("_", 1)[1].removesuffix(".xml")
    report = tmp_path / "report.xml"
    report.write_bytes(report_for(batch_file, batch_id, [f"FILE-{i:03d}" for i in (2, 3, 4, 5)]))
    run(lenient, "import-report", str(report))
    run(lenient, "outstanding", "--format", "json")
    run(lenient, "outstanding")
    run(lenient, "summary")

    everything = "\n".join(outputs)
    leaked = sorted(value for value in secrets if value in everything)
    assert not leaked, f"{len(leaked)} personal values printed, e.g. {leaked[:5]}"
    assert TOKEN not in everything


def test_a_stored_content_refused_at_flush_fails_its_batch_by_field_names_only(
    tmp_path: Path,
) -> None:
    """A stored content the event model refuses when its file is written (a rule tightened
    by an upgrade, a state edited by hand) failed its batch with pydantic's text, the
    holder's name quoted: stored as the batch's error, printed by `flush`, served by
    `GET /batches`. It now names the record and the field."""
    import sqlite3

    from tests.test_cli_tracker import recent

    config = write_config(tmp_path)
    events = tmp_path / "one.jsonl"
    events.write_text(json.dumps(recent("PD-1")) + "\n", encoding="utf-8")
    assert cli(config, "ingest", str(events)).returncode == 0
    secret = "Zorglubovasecret" + "x" * 300
    with sqlite3.connect(tmp_path / "var" / "state.db") as db:
        db.execute(
            "UPDATE contents SET payload = json_set(payload, '$.holder.birth_name', ?)",
            (secret,),
        )
        db.execute("DELETE FROM passages")  # rendered from the content, as before passages
    flushed = cli(config, "flush", "--force")
    listed = cli(config, "batches", "--format", "json")
    said = flushed.stdout + flushed.stderr + listed.stdout + listed.stderr
    assert flushed.returncode == 1, said
    assert "Zorglubova" not in said
    (batch,) = json.loads(listed.stdout)
    assert batch["state"] == "failed"
    assert "record PD-1 no longer passes validation (holder.birth_name)" in batch["error"]
