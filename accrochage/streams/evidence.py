"""`accrochage evidence`: one record's file for the CDC's procedure on identities that keep
failing (SPEC §8: keep the XML files and the processing reports, then send the KO passages).

The zip holds, sorted by name:

- `passages/<batch id>.xml`: the record's passage in each batch file that carried it, as the
  file on disk holds it (wherever the file moved: the outbox's folder, `deposited/`, `done/`,
  `superseded/`), with a comment naming the file, its sha256 and the batch's action;
- `reports/<file name>`: the CDC reports imported that name the record, byte for byte the
  copies kept beside the state at import;
- `history.json`: the record's transitions; `record.json`: the record as `accrochage show
  RECORD_ID --format json` prints it;
- `missing.txt`, only when something could not be gathered: one line per missing piece (a
  released file gone, a file altered since its release, a passage absent from its file, a
  report of which no copy was kept).

The zip holds personal data (the passages, `record.json`): it is written for the operator
only (mode 0600), atomically (a temporary name, fsync, rename), and every entry carries the
same fixed time, so that the same state gives the same bytes.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import time
import zipfile
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from accrochage.errors import AccrochageError, NotFound
from accrochage.lifeline import gone
from accrochage.sinks.base import BatchSink
from accrochage.sinks.evidence import find_passage, passage_document
from accrochage.sinks.reports import read_report_bytes
from accrochage.state.base import Store
from accrochage.state.values import CarryingBatch, ReportNaming
from accrochage.streams.left_behind import in_the_outbox

ZIP_TIME = (1980, 1, 1, 0, 0, 0)
"""Every entry's time: the zip's bytes depend on the state only, not on when it was made."""
FILE_MODE = 0o600


@dataclass(slots=True)
class Evidence:
    """What `gather_evidence` put in the zip: counts and what is missing (no personal data)."""

    path: Path
    passages: int = 0
    reports: int = 0
    history: int = 0
    missing: list[str] = field(default_factory=list)
    """One line per piece that could not be gathered (also `missing.txt` in the zip)."""
    notes: list[str] = field(default_factory=list)
    """What the operator may want to know and is not missing (a batch never written)."""

    @property
    def complete(self) -> bool:
        return not self.missing


def gather_evidence(
    store: Store,
    sink: BatchSink,
    archive: Path | None,
    record_id: str,
    as_of: date,
    target: Path,
) -> Evidence:
    """Write the evidence zip of one record at `target`; raise `NotFound` for an unknown one.

    `archive`: the folder where imported reports are kept (`Feedback.archive`).
    """
    with store.reading() as reader:
        detail = reader.record_detail(record_id, as_of)
        if detail is None:
            raise NotFound(f"no record {record_id}: see `accrochage records`")
        sources = reader.evidence_sources(record_id)
    evidence = Evidence(target.absolute())
    entries: dict[str, bytes] = {}
    for batch in sources.batches:
        _passage(sink, batch, record_id, entries, evidence)
    for report in sources.reports:
        _report(archive, report, entries, evidence)
    history = detail.get("history") or []
    evidence.history = len(history)
    entries["history.json"] = _json(history)
    entries["record.json"] = _json(detail)
    if evidence.missing:
        entries["missing.txt"] = "".join(f"{line}\n" for line in evidence.missing).encode()
    try:
        write_zip(evidence.path, entries)
    except OSError as exc:
        raise AccrochageError(f"cannot write {evidence.path}: {exc.strerror or exc}") from None
    return evidence


def _json(value: Any) -> bytes:
    """As `accrochage show --format json` prints it (the same text, the same final newline)."""
    return (json.dumps(value, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def _passage(
    sink: BatchSink,
    batch: CarryingBatch,
    record_id: str,
    entries: dict[str, bytes],
    evidence: Evidence,
) -> None:
    entry = f"passages/{batch.batch_id}.xml"
    what = f"batch {batch.batch_id} ({batch.action.value}, {batch.state.value})"
    if batch.file_path is None and batch.sha256 is None:
        evidence.notes.append(f"{what}: no file was released for it (nothing was sent)")
        return
    path = _file_of(sink, batch)
    if path is None:
        evidence.missing.append(f"{entry}: the file {batch.file_name} of {what} {_gone(batch)}")
        return
    try:
        found = find_passage(path, record_id)
    except (OSError, AccrochageError) as exc:
        problem = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        evidence.missing.append(f"{entry}: {path} of {what} cannot be read: {problem}")
        return
    if found.passage is None:
        evidence.missing.append(f"{entry}: {path} of {what} holds no passage of this record")
        return
    same = batch.sha256 is None or found.sha256 == batch.sha256
    if not same:
        evidence.missing.append(
            f"{entry}: {path} of {what} was altered since its release (sha256 {found.sha256}, "
            f"recorded {batch.sha256}): the passage is as the file holds it now"
        )
    about = {
        "idTechnique": record_id,
        "batch": batch.batch_id,
        "action": batch.action.value,
        "batch state": batch.state.value,
        "schema version": batch.schema_version,
        "file": batch.file_name,
        "found at": str(path),
        "line": str(found.line) if found.line is not None else "?",
        "file sha256": found.sha256,
        "recorded sha256": f"{batch.sha256} ({'same' if same else 'DIFFERENT'})",
    }
    entries[entry] = passage_document(found.passage, about)
    evidence.passages += 1


def _file_of(sink: BatchSink, batch: CarryingBatch) -> Path | None:
    """Where the batch's file is: in its archive when it was archived there, else (a copy
    left behind) where the state records it or in another of its certifier's outbox folders."""
    archived = None if batch.archived is None else batch.archived.to
    held = None if archived is None else archived / batch.file_name
    if held is not None and held.is_file():
        return held
    return in_the_outbox(sink, batch.certifier, batch.file_name, batch.file_path)


def _gone(batch: CarryingBatch) -> str:
    archived = batch.archived
    day = None if archived is None else archived.at.date().isoformat()
    if archived is not None and archived.to is None:
        return f"was deleted from the outbox on {day} (`accrochage archived`: the retention)"
    if archived is not None:
        return f"was archived to {archived.to} on {day}, and is not there now"
    where = f" (recorded at {batch.file_path})" if batch.file_path is not None else ""
    return f"is missing{where}, and is in none of its certifier's outbox folders"


def _report(
    archive: Path | None,
    report: ReportNaming,
    entries: dict[str, bytes],
    evidence: Evidence,
) -> None:
    name = _entry_name(report.name) or report.sha256
    entry = f"reports/{name}"
    if entry in entries:
        entry = f"reports/{report.sha256[:16]}_{name}"
    data = _kept_copy(archive, report)
    if data is None:
        evidence.missing.append(
            f"{entry}: no copy of the report imported at {report.imported_at.isoformat()} "
            f"(sha256 {report.sha256}) is kept beside the state"
        )
        return
    entries[entry] = data
    evidence.reports += 1


def _kept_copy(archive: Path | None, report: ReportNaming) -> bytes | None:
    """The bytes of the report's kept copy: the path its summary names, else the archive's
    file named by its digest (`keep_copy`); only bytes of the same sha256 count."""
    candidates: list[Path] = []
    if report.kept_as is not None:
        candidates.append(report.kept_as)
    if archive is not None and archive.is_dir():
        candidates += sorted(archive.glob(f"{report.sha256[:16]}_*"))
    for candidate in candidates:
        try:
            data = read_report_bytes(candidate)
        except (OSError, AccrochageError):
            continue
        if hashlib.sha256(data).hexdigest() == report.sha256:
            return data
    return None


def _entry_name(name: str) -> str:
    """A report's name as a zip entry's last part: no folder, nothing hidden."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return base.lstrip(".").strip()


ABANDONED_AFTER_SECONDS = 600
"""A temporary zip of another process left this long is abandoned (`_sweep_partials`)."""


def write_zip(target: Path, entries: dict[str, bytes]) -> None:
    """The entries, sorted, in a zip at `target`, mode 0600, replacing it atomically."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.partial")
    _sweep_partials(target)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(descriptor, "wb") as out:
            os.fchmod(out.fileno(), FILE_MODE)
            with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bundle:
                for name in sorted(entries):
                    info = zipfile.ZipInfo(name, ZIP_TIME)
                    info.compress_type = zipfile.ZIP_DEFLATED
                    info.create_system = 3
                    info.external_attr = (0o100000 | FILE_MODE) << 16
                    bundle.writestr(info, entries[name])
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _sync_folder(target.parent)


def _sweep_partials(target: Path) -> None:
    """The temporary zips of `target` left by runs killed before they removed them (kill -9,
    the OOM killer): they hold personal data, and one of this process's id (a container's
    command starts with the same id) made the next run fail with "File exists". Another
    process's, written to in the last ten minutes, is left alone (another host's?)."""
    for found in target.parent.glob(f".{glob.escape(target.name)}.*.partial"):
        pid = found.name[len(target.name) + 2 : -len(".partial")]
        with suppress(OSError):
            if pid.isdigit() and (int(pid) == os.getpid() or _abandoned(found, int(pid))):
                found.unlink()


def _abandoned(path: Path, pid: int) -> bool:
    return gone(pid) and time.time() - path.stat().st_mtime > ABANDONED_AFTER_SECONDS


def _sync_folder(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
