"""A fork server whose helpers only decode, or only render, imports what they run and no
more (`processes.DECODING`, `processes.RENDERING`): about 0.55 s of CPU where the whole
project takes 0.9. What it leaves out must be nothing a helper needs: a helper that imported
a module of its own would pay that import in every helper, every time one starts.

Each probe runs in a process of its own, as a command does: a process has one fork server,
started with the preload of the first helper it needs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from accrochage.processes import DECODING, PRELOAD, RENDERING
from accrochage.refdata.load import load_refdata
from accrochage.state.sqlite import SqliteStore
from tests.refdata_files import cog_folder, fc, refdata_dir
from tests.support.crash import (
    child_env,
    cli_command,
    finished,
    write_config,
    write_generated_events,
)

__all__ = ["refdata_dir"]

MODULES = "sorted(__import__('sys').modules)"

DECODE_PROBE = f"""
import builtins, json, sys
from pathlib import Path
from accrochage import processes
processes.helper_context(processes.DECODING)  # as `accrochage ingest FILE` starts it
from accrochage.app import build_core
from accrochage.pool import HelperPool
from accrochage.settings import load_settings
from accrochage.streams.incoming import Incoming

core = build_core(load_settings(Path(sys.argv[1])), one_off=True)
lines = Path(sys.argv[2]).read_text(encoding="utf-8").splitlines()
decoded = core.decoder.decode([Incoming(line) for line in lines])
bare = HelperPool(1, name="bare")
print(json.dumps({{
    "decoded": sum(1 for item in decoded if item.decoded is not None),
    "preloaded": bare.submit(builtins.eval, {MODULES!r}).result(),
    "helper": core.decoder._pool.submit(builtins.eval, {MODULES!r}).result(),
}}))
bare.shutdown()
core.close()
"""
"""Decodes the events of a file through the decode processes `ingest` starts (one here, so
that the helper asked is the one that decoded them all), then asks it for its modules, and a
bare helper of the same fork server for what the fork server preloaded."""

RENDER_PROBE = f"""
import builtins, json, sys
from pathlib import Path
from accrochage.app import build_core
from accrochage.pool import HelperPool
from accrochage.settings import load_settings
from accrochage.streams.flush_report import FlushReport

core = build_core(load_settings(Path(sys.argv[1])), one_off=True)
files = []
report = FlushReport(on_file=lambda *args: files.append(args), on_cut=lambda *args: None)
core.flusher.write_planned(core.flusher.plan(report, force=True), report)
bare = HelperPool(1, name="bare")
print(json.dumps({{
    "files": len(files),
    "preloaded": bare.submit(builtins.eval, {MODULES!r}).result(),
    "helper": core.flusher.sink._pool.submit(builtins.eval, {MODULES!r}).result(),
}}))
bare.shutdown()
core.close()
"""
"""`accrochage flush --force` as the command runs it (its fork server started by the plan, as
`flush` starts it), one render process writing every file, then the same questions."""


def _probe(script: str, folder: Path, *args: str) -> dict[str, object]:
    env = child_env() | {
        "ACCROCHAGE_INGEST__DECODE_PROCESSES": "1",
        "ACCROCHAGE_BATCHING__RENDER_PROCESSES": "1",
    }
    done = finished([sys.executable, "-c", script, *args], cwd=folder, env=env)
    answer: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return answer


def _imported_by_helper(answer: dict[str, object]) -> list[str]:
    preloaded = answer["preloaded"]
    helper = answer["helper"]
    assert isinstance(preloaded, list) and isinstance(helper, list)
    return sorted(set(helper) - set(preloaded))


def test_the_preloads_name_importable_modules_narrower_than_the_whole() -> None:
    for name in (*DECODING, *RENDERING):
        assert name not in PRELOAD
        __import__(name)
    assert "accrochage.cli" not in {*DECODING, *RENDERING}


def test_a_decode_process_imports_nothing_its_fork_server_left_out(
    tmp_path: Path, refdata_dir: Path
) -> None:
    """With the reference data loaded (the rules read it, a code or a birth place unknown to
    it builds its message): every module decoding reaches was preloaded."""
    config = write_config(tmp_path, max_records=1000)
    store = SqliteStore(tmp_path / "state.db")
    try:
        load_refdata(store.refdata(), fc(refdata_dir), cog_folder(tmp_path / "cog"))
    finally:
        store.close()
    events = write_generated_events(config, tmp_path / "events.jsonl", 600, seed=11)
    answer = _probe(DECODE_PROBE, tmp_path, str(config), str(events))
    assert answer["decoded"] == 600
    preloaded = answer["preloaded"]
    assert isinstance(preloaded, list)
    assert "accrochage.streams.decode_worker" in preloaded
    assert "accrochage.cli" not in preloaded  # the narrow preload, not the whole project
    assert _imported_by_helper(answer) == []


def test_a_render_process_imports_nothing_its_fork_server_left_out(tmp_path: Path) -> None:
    config = write_config(tmp_path, max_records=1000)
    # render processes from 2,000 passages
    events = write_generated_events(config, tmp_path / "events.jsonl", 2100, seed=11)
    finished(cli_command(config, "ingest", str(events)), cwd=tmp_path)
    answer = _probe(RENDER_PROBE, tmp_path, str(config))
    files = answer["files"]
    assert isinstance(files, int) and files >= 3
    preloaded = answer["preloaded"]
    assert isinstance(preloaded, list)
    assert "accrochage.sinks.xml_outbox" in preloaded
    assert "accrochage.cli" not in preloaded
    assert _imported_by_helper(answer) == []
