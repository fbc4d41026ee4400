"""`doctor`'s checks of the files: those to deposit and those waiting for a report, the
records a report left out, the outbox they are written in, and the room left on the state's
disk."""

from __future__ import annotations

import os
from pathlib import Path

from accrochage.models.batch import outbox_place
from accrochage.models.vocabulary import BatchState
from accrochage.private_files import open_to_others
from accrochage.settings import Settings
from accrochage.sinks.outbox import files_to_upload
from accrochage.state.base import Observation, Store
from accrochage.state.values import ReleasedBatch
from accrochage.streams.findings import Finding, Level
from accrochage.streams.room import INVALID_KEPT_ABOVE, MIB, in_mib
from accrochage.streams.strays import stray_files


def room_findings(settings: Settings, store: Store) -> list[Finding]:
    """The state's disk against `state.keep_free_bytes`: events are refused below it, and
    the operator learns it here before a platform does."""
    free = store.location.free_bytes()
    keep = settings.state.keep_free_bytes
    if free is None:
        return []
    said = f"the state's disk has {in_mib(free)} free"
    if keep == 0:
        return [Finding("room", Level.OK, f"{said}; state.keep_free_bytes is 0: none is kept")]
    what = (
        f"events are refused below state.keep_free_bytes ({in_mib(keep)}, kept for the "
        "batch files, reports and corrections; a Kafka worker waits)"
    )
    fix = "free space on that disk (old backups, logs), or lower state.keep_free_bytes"
    with store.reading() as reader:
        reclaimable = reader.health().free_bytes
    if reclaimable >= MIB:
        fix += (
            f"; the state holds {in_mib(reclaimable)} of free pages (deleted data): stop the "
            "service and run `accrochage compact` to give them back"
        )
    if free < keep:
        return [Finding("room", Level.ERROR, f"{said}: {what}, now: {fix}")]
    if free < INVALID_KEPT_ABOVE * keep:
        invalid = (
            "below twice that, now, invalid and unusable events are refused and valid ones "
            "stored (one platform's junk does not take the room of another's events)"
        )
        return [Finding("room", Level.WARNING, f"{said}; {what}; {invalid}: {fix}", action=True)]
    return [Finding("room", Level.OK, f"{said}; {what}")]


def files_finding(observation: Observation) -> Finding:
    waiting = sum(
        n
        for (_, state), n in observation.batches.items()
        if state in (BatchState.WRITTEN, BatchState.DEPOSITED)
    )
    late = sum(observation.unreported.values())
    unwritten = sum(n for (_, state), n in observation.batches.items() if state == BatchState.CUT)
    said = (
        f"{observation.to_deposit} file(s) to deposit on the CDC portal; {waiting} file(s) "
        f"written or deposited without a CDC report ({late} of them for longer than "
        "alerts.unreported_after)"
    )
    if unwritten:
        return Finding(
            "files",
            Level.WARNING,
            f"{unwritten} batch(es) cut and not recorded as written (a flush interrupted, or "
            f"under way in another process; their files may be in the outbox already): "
            f"`accrochage flush` writes or records them before any is deposited; {said}",
            action=True,
        )
    return Finding("files", Level.OK, said)


def left_out_findings(store: Store) -> list[Finding]:
    """Records a processed report did not mention: they stay `deposited` with nothing else to
    say so once `import-report`'s output is gone, until their deadline comes."""
    with store.reading() as reader:
        batches = reader.left_out()
    if not batches:
        return []
    count = sum(b["records"] for b in batches)
    first = batches[0]["batch_id"]
    return [
        Finding(
            "reports",
            Level.WARNING,
            f"{count} record(s) in {len(batches)} reported file(s) were not mentioned by their "
            "processed report (never reached the CDC, or its report missed them): `accrochage "
            f"retry --batch {first}` sends them again, file by file (`accrochage summary` "
            "lists the files)",
            action=True,
        )
    ]


def held_elsewhere_findings(store: Store) -> list[Finding]:
    """Accepted records the CDC holds under another idTechnique that wait for a correction
    or withdrawal: no SUPPRESSION is cut for them, so they wait for the operator."""
    with store.reading() as reader:
        held = reader.held_elsewhere()
    if not held:
        return []
    return [
        Finding(
            "reports",
            Level.WARNING,
            f"{len(held)} accepted record(s) the CDC holds under another idTechnique wait for a "
            f"correction or withdrawal no SUPPRESSION can carry (first: {held[0]['record_id']}, "
            f"held as {held[0]['cdc_held_as']}): ask the CDC's support (`accrochage show ID` "
            "says what), then `accrochage support-applied ID --note REF`",
            action=True,
        )
    ]


def requests_of_another_certifier_findings(store: Store) -> list[Finding]:
    """A request entered for one certifier whose id another certifier's record took (a
    `--certifier` mistyped, or another certifier's platform using the id): no acceptance
    closes it by itself, and its deadline runs on."""
    with store.reading() as reader:
        mismatched = reader.requests_of_another_certifier()
    if not mismatched:
        return []
    request_id, record_id, asked_for, holder = mismatched[0]
    return [
        Finding(
            "corrections",
            Level.WARNING,
            f"{len(mismatched)} open correction request(s) name a record id another "
            f"certifier's record holds (first: request {request_id} of {asked_for} names "
            f"{record_id}, a record of {holder}): no acceptance closes it by itself; check "
            f"the id with {asked_for}, then close it by hand (`accrochage correction-request "
            f"answer {request_id} --corrected` once {holder}'s data answers it; if it was "
            "entered by mistake, --cancelled TEXT saying what was meant, and open it again "
            "with the right id)",
            action=True,
        )
    ]


def refused_after_acceptance_findings(store: Store) -> list[Finding]:
    """Records whose delivery deadline was met, that the CDC deleted for a correction and
    whose corrected content it refused: no deadline warns of them, yet the holder's
    certification is at the CDC no more."""
    with store.reading() as reader:
        count, first = reader.refused_after_acceptance()
    if not count:
        return []
    return [
        Finding(
            "reports",
            Level.WARNING,
            f"{count} record(s) the CDC accepted once, then deleted for a correction, refused "
            f"the corrected content of (first: {first}): it holds nothing of them now. "
            "`accrochage show ID` says why; fix the content (a new event) or `accrochage "
            "retry ID`",
            action=True,
        )
    ]


def outbox_findings(settings: Settings, store: Store) -> list[Finding]:
    """The outbox as the files to deposit need it: there, and writable by a user who writes
    the state (a monitoring user who may only read is not told it cannot write). Existence
    only (a stat each): `verify` checks every file's bytes."""
    outbox = settings.paths.outbox
    with store.reading() as reader:
        to_deposit = reader.released_batches([BatchState.WRITTEN])
    absent = [b for b in to_deposit if not _found(b, outbox)]
    sent = [b for b in absent if _deposited_since(b, outbox)]
    missing = [b.file.path for b in absent if b not in sent]
    findings = []
    if sent:
        findings.append(
            Finding(
                "outbox",
                Level.WARNING,
                f"{len(sent)} file(s) to deposit are in deposited/ or done/ (first: "
                f"{sent[0].file.path.name}): deposited after the state last recorded them (a "
                "state restored from a backup?); do not upload them again: run `accrochage "
                f"deposited` for them (first: `accrochage deposited {sent[0].batch.batch_id}`)",
                action=True,
            )
        )
    if missing:
        findings.append(
            Finding(
                "outbox",
                Level.WARNING,
                f"{len(missing)} of the {len(to_deposit)} file(s) to deposit are missing "
                f"(first: {missing[0].name}): `accrochage flush` writes them again; "
                "`accrochage verify` checks every file",
                action=True,
            )
        )
    exposed = [b.file.path for b in to_deposit if _open_to_others(b.file.path)]
    if exposed:
        findings.append(
            Finding(
                "outbox",
                Level.WARNING,
                f"{len(exposed)} file(s) to deposit may be read by every user of this machine "
                f"(first: {exposed[0].name}), and they hold personal data: `chmod o-rwx` them "
                "(files written now are readable by their owner and group only)",
                action=True,
            )
        )
    strays = stray_files(store, files_to_upload(outbox))
    if strays:
        findings.append(
            Finding(
                "outbox",
                Level.WARNING,
                f"{len(strays)} file(s) among those to upload are not the state's files to "
                f"upload (first: {strays[0].path.name}: {strays[0].why}): "
                "`accrochage verify --repair` moves them to <certifier>/unknown/",
                action=True,
            )
        )
    writer = os.access(Path(os.path.realpath(settings.paths.state)).parent, os.W_OK)
    unusable = outbox_unusable(outbox, writer)
    if unusable is not None:
        findings.append(Finding("outbox", *unusable, action=True))
    if not findings:
        findings.append(
            Finding(
                "outbox", Level.OK, f"{outbox}: the {len(to_deposit)} file(s) to deposit are there"
            )
        )
    return findings


def _open_to_others(path: Path) -> bool:
    try:
        return open_to_others(path)
    except OSError:  # missing: said above
        return False


def _found(batch: ReleasedBatch, outbox: Path) -> bool:
    """Where the state records it, or where `paths.outbox` puts it (a state moved with its
    outbox, its paths recorded anew by the next command that writes)."""
    name, certifier = batch.file.path.name, batch.batch.certifier.key
    return batch.file.path.is_file() or outbox_place(outbox, certifier, name, batch.state).is_file()


def _deposited_since(batch: ReleasedBatch, outbox: Path) -> bool:
    """Whether a `written` batch's file is where only `deposited` or `import-report` put it
    (`streams/left_behind.deposited_since`): `flush` leaves it there, not to upload it twice."""
    name, certifier = batch.file.path.name, batch.batch.certifier.key
    return any(
        outbox_place(outbox, certifier, name, state).is_file()
        for state in (BatchState.DEPOSITED, BatchState.REPORTED)
    )


def outbox_unusable(outbox: Path, writer: bool) -> tuple[Level, str] | None:
    """Why no file could be written in the outbox (nothing created to find out, unlike the
    services' own check at start); `writer`: this user writes the state (a monitoring user
    who may only read is not told it cannot write)."""
    if outbox.exists() and not outbox.is_dir():
        return Level.ERROR, (
            f"paths.outbox {outbox} is not a folder: no file can be written there (`run` "
            "refuses to start, `flush` fails); set paths.outbox to a folder"
        )
    if not writer:
        return None
    existing = next(p for p in (outbox, *outbox.parents) if p.exists())
    if existing == outbox and not os.access(outbox, os.W_OK):
        return Level.WARNING, (
            f"paths.outbox {outbox} cannot be written by this user, who writes the state: "
            "no file can be written, moved or written again there"
        )
    if existing != outbox and not (existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)):
        return Level.WARNING, (
            f"paths.outbox {outbox} does not exist and cannot be created by this user "
            f"({existing} is not a folder it may write): create it, or set paths.outbox"
        )
    return None
