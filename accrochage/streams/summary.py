"""The summary as an operator and a platform read it: certifiers by their configured keys.

A certifier that is not configured is counted under `?`, as the metrics, the alerts and the
dashboard label it (CONTRACT §10): a record's `certifier` can be any text its sender chose,
and it never becomes a row or a key of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

UNKNOWN = "?"


def as_configured(summary: dict[str, Any], certifiers: Collection[str]) -> dict[str, Any]:
    """`summary` (`Reader.summary`) with every other certifier folded into `?`."""

    def label(certifier: str | None) -> str:
        return certifier if certifier is not None and certifier in certifiers else UNKNOWN

    summary["by_certifier"] = _folded(summary["by_certifier"], label)
    for key in ("at_risk_by_certifier", "overdue_by_certifier"):
        # Folded too: the table reads them under `?` (it showed 0 there while the alerts
        # fired for `?`), and a key of its own printed a sender's free text.
        summary[key] = _folded_counts(summary[key], label)
    requests = summary.get("correction_requests")
    if requests is not None:
        requests["by_certifier"] = _folded(requests["by_certifier"], label)
    for row in summary["next_deadlines"]:
        row["certifier"] = label(row["certifier"])
    return summary


def _folded(
    counts: dict[str, dict[str, int]], label: Callable[[str | None], str]
) -> dict[str, dict[str, int]]:
    folded: dict[str, dict[str, int]] = {}
    for certifier, numbers in counts.items():
        into = folded.setdefault(label(None if certifier == UNKNOWN else certifier), {})
        for name, n in numbers.items():
            into[name] = into.get(name, 0) + n
    return dict(sorted(folded.items()))


def _folded_counts(counts: dict[str, int], label: Callable[[str | None], str]) -> dict[str, int]:
    """`counts` (certifier -> n) with the certifiers `label` does not keep summed under `?`."""
    folded: dict[str, int] = {}
    for certifier, n in counts.items():
        key = label(None if certifier == UNKNOWN else certifier)
        folded[key] = folded.get(key, 0) + n
    return dict(sorted(folded.items()))
