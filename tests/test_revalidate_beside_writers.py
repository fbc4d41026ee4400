"""`revalidate` (and the services' daily check of refused dates) beside a service's writer.

Decoding a stored event again takes about 150 µs; done inside the write transaction, a chunk
of 500 records held the write lock about 75 ms, and a service's writer (HTTP, Kafka) waited
as long for each chunk. The records are now decoded from a reader, without the write lock;
the write transaction reads them again and decodes inside only those changed meanwhile, so
that nothing stored since the read is overwritten by findings on an older content. Another
writer is let in between two chunks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import accrochage.streams.revalidate as revalidate_module
from accrochage.app import Core
from accrochage.models.deadline import PARIS, FixedClock
from accrochage.state.base import Transaction
from tests.test_tracker import event, ingest, make_core, record

ON_4_DECEMBER = datetime(2026, 12, 4, 9, 0, tzinfo=PARIS)


class Watch:
    """The write transactions and decodes of one revalidation, on the core's own store."""

    def __init__(self, core: Core, monkeypatch: pytest.MonkeyPatch) -> None:
        self.inside = False
        self.decoded_inside: list[str] = []
        self.decoded_outside: list[str] = []
        self.transactions = 0
        self.let_in = 0
        self.before_first: list[dict[str, Any]] = []
        """Events stored by another writer after the first read, before the first write."""
        store = core.store
        opened = store.transaction
        decode = revalidate_module.decode_ready

        @contextlib.contextmanager
        def transaction() -> Iterator[Transaction]:
            if self.transactions == 0 and self.before_first:
                monkeypatch.setattr(store, "transaction", opened)
                ingest(core, *self.before_first)
                monkeypatch.setattr(store, "transaction", transaction)
            self.transactions += 1
            with opened() as tx:
                self.inside = True
                try:
                    yield tx
                finally:
                    self.inside = False

        def decode_ready(payload: Any, *args: Any, **kwargs: Any) -> Any:
            ready = decode(payload, *args, **kwargs)
            record_id = ready[0].record_id or "?"
            (self.decoded_inside if self.inside else self.decoded_outside).append(record_id)
            return ready

        def let_writers_in() -> None:
            self.let_in += 1

        monkeypatch.setattr(store, "transaction", transaction)
        monkeypatch.setattr(store, "let_writers_in", let_writers_in)
        monkeypatch.setattr(revalidate_module, "decode_ready", decode_ready)


def test_records_are_decoded_without_the_write_lock_and_changed_ones_again_inside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    core, clock = make_core(tmp_path, FixedClock(ON_4_DECEMBER))
    try:
        ingest(core, *(event(f"AHEAD-{n}", delivered_on="2026-12-07") for n in (1, 2, 3)))
        clock.advance(timedelta(days=3))
        watch = Watch(core, monkeypatch)
        # Stored after the revalidation read AHEAD-2 and before it writes: a new content, of
        # a date that has come but a certification without its type. Findings on the content
        # read first (valid now) would make it pending.
        watch.before_first.append(
            event("AHEAD-2", delivered_on="2026-12-05", certification={"code": "RS0000"})
        )
        report = core.revalidator().dates_come()

        assert sorted(watch.decoded_outside) == ["AHEAD-1", "AHEAD-2", "AHEAD-3"]
        assert watch.decoded_inside == ["AHEAD-2"], "decoded again: changed since it was read"
        assert sorted((c.record_id, c.after) for c in report.changed) == [
            ("AHEAD-1", "pending"),
            ("AHEAD-3", "pending"),
        ]
        assert report.checked == 3
        assert record(core, "AHEAD-2")["status"] == "invalid"
        assert [e["field"] for e in record(core, "AHEAD-2")["errors"]] == ["certification.type"]
        assert record(core, "AHEAD-1")["status"] == "pending"
    finally:
        core.close()


def test_another_writer_is_let_in_between_two_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    core, _ = make_core(tmp_path, FixedClock(ON_4_DECEMBER))
    try:
        ingest(core, *(event(f"R-{n}", delivered_on="2026-11-20") for n in range(5)))
        monkeypatch.setattr(revalidate_module, "CHUNK", 2)
        watch = Watch(core, monkeypatch)
        report = core.revalidator().run()

        assert report.checked == 5
        assert watch.transactions == 3
        assert watch.let_in == 2, "between two chunks, not after the last"
        assert watch.decoded_inside == []
    finally:
        core.close()
