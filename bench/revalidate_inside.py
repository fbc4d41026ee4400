"""`bench.beside`'s baseline for `revalidate`: the same records checked again, each chunk
decoded inside its write transaction, as `revalidate` did before session 54.

    python -m bench.revalidate_inside CONFIG

The product's own pieces (`Revalidator._look`, `_apply`, the chunk's size), run in the order
the product ran them then: read, decode and store a chunk with the write lock held all along.
Prints what the command prints: `N record(s) checked, M changed`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from accrochage import heap
from accrochage.app import build_core
from accrochage.models.deadline import paris_today
from accrochage.models.record import Change
from accrochage.settings import load_settings
from accrochage.streams.revalidate import CHUNK, RevalidationReport


def main() -> None:
    core = build_core(load_settings(Path(sys.argv[1])))
    heap.settle()
    try:
        revalidator = core.revalidator()
        with core.store.reading() as reader:
            ids = reader.to_revalidate(None, held_by_date=False)
        report = RevalidationReport()
        for start in range(0, len(ids), CHUNK):
            with core.store.transaction() as tx:
                now, today = core.clock.now(), paris_today(core.clock)
                changes: list[Change] = []
                for record in tx.records(ids[start : start + CHUNK]).values():
                    look = revalidator._look(tx, record, today)
                    change = revalidator._apply(look, now, "bench", report)
                    changes += [change] if change is not None else []
                tx.save(changes)
        print(f"{report.checked} record(s) checked, {len(report.changed)} changed")
    finally:
        core.close()


if __name__ == "__main__":
    main()
