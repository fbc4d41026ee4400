"""The writer service's thread never leaves a submission waiting for ever."""

from __future__ import annotations

from typing import Any

import pytest

from accrochage.streams import writer as writer_module
from accrochage.streams.incoming import Incoming
from accrochage.streams.metrics import Metrics
from accrochage.streams.writer import WriterService

WAIT = 60.0


class StoringIngestor:
    def __init__(self) -> None:
        self.groups: list[int] = []

    def ingest(self, items: list[Incoming]) -> list[Any]:
        self.groups.append(len(items))
        return [object() for _ in items]


def test_a_writer_thread_that_fails_fails_what_waits_and_what_comes_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An error outside the transaction's own guard (here: counting a committed group)
    killed the thread, and every later submission waited for ever."""

    def broken_tally(results: Any) -> Any:
        raise ValueError("a fault after the commit")

    monkeypatch.setattr(writer_module, "tally", broken_tally)
    ingestor = StoringIngestor()
    service = WriterService(ingestor, metrics=Metrics())  # type: ignore[arg-type]
    first = service.submit([Incoming(b"{}")])
    with pytest.raises(RuntimeError, match="send them again once the service is restarted"):
        first.result(WAIT)
    later = service.submit([Incoming(b"{}")])
    with pytest.raises(RuntimeError, match="writer thread failed"):
        later.result(0)
    service.stop(WAIT)
    assert ingestor.groups == [1]
