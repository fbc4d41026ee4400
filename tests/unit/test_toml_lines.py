"""Where each key of a configuration file is written (`settings/toml_lines.py`)."""

from __future__ import annotations

import tomllib

from accrochage.settings.toml_lines import key_lines, line_of

TEXT = """\
title = "x"
emitter = { id_client = "A", nature = "B" }
[batching]
alerts.webhook_timeout = "3s"
"quoted.key" = 1
  indented = 2
[[certifiers]]
key = "a"
[certifiers.refdata]
siret = "1"
[[certifiers]]
key = "b"
text = '''
[batching]
tick = 1
'''
after = 3
"""
TEXT += "\n".join(
    [
        "quote = '" + '"' * 3 + "'",  # 18: a one-line string of three quotes
        "tokens = [",  # 19
        '  "a", # [x]',
        "  [1, 2],",
        '  ["b]"],',
        "]",
        "[kafka]",
        "topic = 4",  # 25
    ]
)


def test_tables_keys_and_items_are_placed_by_their_line() -> None:
    tomllib.loads(TEXT)  # the sample is TOML
    lines = key_lines(TEXT)
    assert lines[("title",)] == 1
    assert lines[("emitter",)] == 2
    assert lines[("batching",)] == 3
    assert lines[("batching", "alerts", "webhook_timeout")] == 4
    assert lines[("batching", "quoted.key")] == 5
    assert lines[("batching", "indented")] == 6
    assert lines[("certifiers", 0)] == 7
    assert lines[("certifiers", 0, "refdata", "siret")] == 10
    assert lines[("certifiers", 1, "key")] == 12
    assert lines[("certifiers", 1, "after")] == 17, "not moved by the multi-line string"
    assert ("batching", "tick") not in lines
    assert lines[("certifiers", 1, "quote")] == 18, "a one-line string of three quotes"
    assert lines[("certifiers", 1, "tokens")] == 19
    assert lines[("kafka", "topic")] == 25, "not moved by a multi-line array's lines"
    assert not any(loc[:1] == ("1, 2",) for loc in lines), "an array's line is no table"


def test_a_key_not_placed_is_told_by_the_nearest_table_holding_it() -> None:
    lines = key_lines(TEXT)
    assert line_of(lines, ("emitter", "id_client")) == (2, False)
    assert line_of(lines, ("certifiers", 1, "id_contrat")) == (11, False)
    assert line_of(lines, ("certifiers", 1, "key")) == (12, True)
    assert line_of(lines, ("schema", "version")) is None
