"""The tables the commands print stay aligned whatever the record ids hold: a wide (CJK)
character takes two columns of a terminal, an accent written apart (`e` + U+0301) none."""

from __future__ import annotations

import unicodedata

from accrochage.commands.output import table_lines, width

IDS = ["漢字漢字漢字-1", unicodedata.normalize("NFD", "école-3"), "PX-2"]


def test_the_column_after_a_wide_or_combining_id_starts_at_the_same_place() -> None:
    rows = [{"record_id": rid, "status": "pending"} for rid in IDS]
    lines = list(table_lines(rows, ["record_id", "status"], lambda row, c: str(row[c])))
    starts = {
        width(line[: line.index("pending" if "pending" in line else "status")]) for line in lines
    }
    assert starts == {width(IDS[0]) + 2}, lines


def test_width_counts_terminal_columns() -> None:
    assert [width(rid) for rid in IDS] == [14, 7, 4]
    assert width("Lefèvre") == 7
