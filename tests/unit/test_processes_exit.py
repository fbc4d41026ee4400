"""A process's exit code as the operator reads it: a signal by its name."""

from __future__ import annotations

from accrochage.processes import exit_said


def test_a_signal_is_named_and_a_code_is_said_as_it_is() -> None:
    assert exit_said(-9) == "exit code -9: killed by SIGKILL"
    assert exit_said(-15) == "exit code -15: killed by SIGTERM"
    assert exit_said(70) == "exit code 70"
    assert exit_said(None) == "exit code None"
    assert exit_said(-200) == "exit code -200"
