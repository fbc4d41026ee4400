"""Files not yet deposited whose header the configuration no longer gives (a contract
renewed, the emitter changed): superseded and cut again under the configuration's header.

Only by the first flush of a process. A configuration is read when a process starts: a
service left running while the operator edits its file and runs `flush` holds the old one.
Judged at every tick, the two would supersede each other's files for ever, each cutting its
own header again, and one of those files would always wait in the outbox to be uploaded. The
first flush of a process (a command, a service that starts) applies the configuration it
read; later ones only say that files carry another header, and that a restart applies it.
"""

from __future__ import annotations

from accrochage.models.batch import FrozenBatch, header_changes
from accrochage.models.registry import Registry


def headers_changed(batches: list[FrozenBatch], registry: Registry) -> dict[str, str]:
    """The batches whose header `registry` no longer gives, and what changed; a certifier
    taken out of the configuration is left to `doctor`."""
    changed = {}
    for batch in batches:
        certifier = registry.get(batch.certifier.key)
        if certifier is None:
            continue
        changes = header_changes(batch, registry.emitter_for(certifier), certifier)
        if changes:
            changed[batch.batch_id] = ", ".join(changes)
    return changed


def header_cause(changed: dict[str, str], batch_id: str) -> str | None:
    """What the history of a member of `batch_id` says, when it is superseded for its header."""
    what = changed.get(batch_id)
    return None if what is None else f"its header is not the configuration's any more: {what}"


class HeaderCheck:
    """Whether this process's first flush has applied its configuration's headers yet."""

    def __init__(self) -> None:
        self.applied = False

    def due(
        self, batches: list[FrozenBatch], registry: Registry
    ) -> tuple[dict[str, str], str | None]:
        """The batches to supersede for their header, and otherwise a note for the operator
        when files carry another header than this process's configuration (`registry`)."""
        changed = headers_changed(batches, registry)
        if not self.applied:
            return changed, None
        if not changed:
            return {}, None
        first = next(iter(changed.values()))
        return {}, (
            f"{len(changed)} file(s) not yet deposited carry another header than this "
            f"process's configuration ({first}): another process cut them under another "
            "configuration; if its file changed, restart this service so that it reads it "
            "(its first flush then supersedes the files of the old header)"
        )
