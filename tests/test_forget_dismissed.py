"""The raw input of an unusable event the operator dismissed (it may name a person) is
forgotten once dismissed for `state.forget_dismissed_after`: by the services once a day, by
`accrochage forget-dismissed` at once. The row stays; the same input sent again brings it
back. Before, it stayed in the state for as long as the state."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from accrochage.app import Core
from accrochage.runtimes.embedded import scheduler_for
from accrochage.streams.unusable import ForgetDismissed, dismiss_unusable
from tests.test_cli_tracker import run, write_jsonl
from tests.test_http import recent
from tests.test_tracker import FixedClock, ingest, make_core, write_config

CUT = "2200-01-01 00:00"
HOLDER = "Dupont-Aignan"
"""A name in the raw input: what must not stay once forgotten."""


def unusable_input(n: int) -> str:
    """Not JSON: an unusable event whose raw input names a person."""
    return f'{{"record_id": "U-{n}", "holder": {{"birth_name": "{HOLDER}"'


def rows(core: Core) -> list[dict[str, Any]]:
    with core.store.reading() as reader:
        return reader.unusable(limit=100, dismissed=True)


def dismiss(core: Core, clock: FixedClock, *ids: int) -> None:
    outcomes = dismiss_unusable(core.store, clock, [str(i) for i in ids], "sent again fixed")
    assert all(o.done for o in outcomes), outcomes


def raw_on_disk(core: Core) -> bytes:
    """Every byte of the state's files: the name must be in none of them, the WAL included."""
    state = core.settings.paths.state
    return b"".join(
        p.read_bytes() for p in (state, state.with_name(state.name + "-wal")) if p.exists()
    )


@pytest.fixture()
def kept(tmp_path: Path) -> Any:
    core, clock = make_core(tmp_path)
    ingest(core, *(unusable_input(n) for n in range(3)))
    yield core, clock
    core.close()


def test_the_daily_job_forgets_what_was_dismissed_long_enough_ago(kept: Any) -> None:
    core, clock = kept
    first, second, third = sorted(r["id"] for r in rows(core))
    dismiss(core, clock, first, second)
    clock.advance(timedelta(days=60))
    dismiss(core, clock, third)
    job = ForgetDismissed(core.store, clock, timedelta(days=90))
    job.run()
    assert all(r["forgotten_at"] is None and HOLDER in r["raw"] for r in rows(core))
    clock.advance(timedelta(days=31))  # the first two dismissed 91 days ago, the third 31
    job.run()
    by_id = {r["id"]: r for r in rows(core)}
    for gone in (first, second):
        assert by_id[gone]["raw"] == "" and by_id[gone]["forgotten_at"] == clock.now().isoformat()
        assert by_id[gone]["dismissed_note"] == "sent again fixed", "the row stays"
        assert by_id[gone]["errors"], "its errors stay: they name fields, not people"
    assert HOLDER in by_id[third]["raw"] and by_id[third]["forgotten_at"] is None


def test_forgotten_input_leaves_no_trace_in_the_states_files(kept: Any) -> None:
    """The state's connections zero what they delete (`secure_delete`): once the WAL is
    checkpointed, the name is in none of the state's files."""
    core, clock = kept
    checkpoint = sqlite3.connect(core.settings.paths.state)
    checkpoint.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert HOLDER.encode() in raw_on_disk(core)
    dismiss(core, clock, *(r["id"] for r in rows(core)))
    clock.advance(timedelta(days=91))
    ForgetDismissed(core.store, clock, timedelta(days=90)).run()
    checkpoint.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    checkpoint.close()
    assert HOLDER.encode() not in raw_on_disk(core)


def test_a_long_input_forgotten_leaves_no_trace_in_the_freed_pages(tmp_path: Path) -> None:
    """A raw input longer than its row's page holds goes on overflow pages, freed each time
    the row is rewritten (dismissed, opened again, forgotten): a freed page is zeroed too,
    not only the rows of the pages written."""
    core, clock = make_core(tmp_path)
    long_input = '{"note": "' + "x" * 4000 + '", ' + unusable_input(0)[1:]
    ingest(core, long_input)
    checkpoint = sqlite3.connect(core.settings.paths.state)
    checkpoint.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert HOLDER.encode() in raw_on_disk(core)
    [row] = rows(core)
    dismiss(core, clock, row["id"])
    ingest(core, long_input)  # open again
    dismiss(core, clock, row["id"])
    clock.advance(timedelta(days=91))
    ForgetDismissed(core.store, clock, timedelta(days=90)).run()
    checkpoint.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert checkpoint.execute("PRAGMA freelist_count").fetchone()[0] > 0, "pages were freed"
    checkpoint.close()
    core.close()
    assert HOLDER.encode() not in raw_on_disk(core)


def test_the_same_input_sent_again_brings_its_row_back_whole(kept: Any) -> None:
    core, clock = kept
    first = min(r["id"] for r in rows(core))
    dismiss(core, clock, first)
    clock.advance(timedelta(days=91))
    ForgetDismissed(core.store, clock, timedelta(days=90)).run()
    ingest(core, unusable_input(0))
    again = next(r for r in rows(core) if r["id"] == first)
    assert HOLDER in again["raw"], "open again with nothing to fix it from"
    assert again["forgotten_at"] is None and again["dismissed_at"] is None


def test_the_services_forget_once_a_day(kept: Any) -> None:
    core, clock = kept
    dismiss(core, clock, *(r["id"] for r in rows(core)))
    clock.advance(timedelta(days=91))
    [job] = [j for j in scheduler_for(core).jobs if j.name == "dismissed input forgotten"]
    job.run()
    assert all(r["raw"] == "" for r in rows(core))


def test_the_command_forgets_at_once(tmp_path: Path) -> None:
    config = write_config_with_unusable(tmp_path)
    listed = json.loads(run(config, "unusable", "--format", "json").stdout)
    ids = [str(r["id"]) for r in listed]
    run(config, "dismiss-unusable", *ids, "--note", "a test")
    said = run(config, "forget-dismissed").stdout
    assert said.startswith("0 unusable event(s) dismissed before "), said
    said = run(config, "forget-dismissed", "--dismissed-before", "2200-01-01").stdout
    assert said == f"2 unusable event(s) dismissed before {CUT} (Paris): raw input forgotten\n"
    shown = json.loads(run(config, "unusable", "--all", "--format", "json").stdout)
    assert [(r["raw"], r["forgotten_at"] is not None) for r in shown] == [("", True)] * 2
    assert run(config, "forget-dismissed", "--dismissed-before", "2200-01-01").stdout.startswith(
        "0 unusable"
    )


def write_config_with_unusable(directory: Path) -> Path:
    config = write_config(directory)
    source = write_jsonl(
        directory / "in.jsonl", [unusable_input(0), recent("OK-1"), unusable_input(1)]
    )
    run(config, "ingest", str(source))
    return config


def test_a_flood_is_dismissed_at_once_whole_or_one_certifier_s(tmp_path: Path) -> None:
    """Dismissing a platform's flood id by id took a pipeline through `xargs` and a line per
    event; `--all-open` takes every open one, `--certifier` those naming that certifier."""
    config = write_config(tmp_path)
    school = {"type": "certification.delivered", "certifier": "school"}
    pix = {"type": "certification.delivered", "certifier": "pix"}
    junk = [unusable_input(0), unusable_input(1), json.dumps(school), json.dumps(pix)]
    run(config, "ingest", str(write_jsonl(tmp_path / "in.jsonl", junk)))

    def open_ones() -> list[Any]:
        return [
            r["certifier"] for r in json.loads(run(config, "unusable", "--format", "json").stdout)
        ]

    assert sorted(open_ones(), key=str) == sorted([None, None, "school", "pix"], key=str)
    said = run(config, "dismiss-unusable", "--all-open", "--certifier", "school", "--note", "loop")
    assert said.stdout == "1 unusable event(s) dismissed (kept: unusable --all)\n"
    assert "school" not in open_ones() and len(open_ones()) == 3
    said = run(config, "dismiss-unusable", "--all-open", "--note", "a platform's loop")
    assert said.stdout.startswith("3 unusable event(s) dismissed")
    assert open_ones() == []
    dismissed = json.loads(run(config, "unusable", "--all", "--format", "json").stdout)
    assert {r["dismissed_note"] for r in dismissed} == {"loop", "a platform's loop"}
    assert run(config, "dismiss-unusable", "--all-open", "--note", "x").stdout.startswith("0 ")

    for wrong in (
        ["--note", "x"],
        ["1", "--all-open", "--note", "x"],
        ["1", "--certifier", "pix", "--note", "x"],
    ):
        refused = run(config, "dismiss-unusable", *wrong, code=2)
        assert "IDS" in refused.stderr or "--all-open" in refused.stderr, refused.stderr
