"""Releasing a batch file: render to a temporary name, fsync, check, rename, fsync the folder.

A reader of `outbox/` sees either no file or a complete, XSD-valid one, even after a crash.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
from collections.abc import Iterable
from pathlib import Path

from accrochage.models.batch import ReleasedFile
from accrochage.models.event import DeliveredEvent
from accrochage.private_files import PRIVATE_MODE, fsync_directory
from accrochage.sinks.gate import check_file
from accrochage.sinks.render import FluxHeader, FluxPassage, flux_passage, write_flux

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def file_name(header: FluxHeader) -> str:
    """`<emitter BCR>_<certifier>_<YYYYMMDDTHHMMSS>_<batch id>.xml`, ASCII only, whatever the
    action (CONTRACT §7): `batches` says which files withdraw passages."""
    stamp = header.horodatage[:19].replace("-", "").replace(":", "")
    parts = (header.emitter.id_client, header.certifier.key, stamp, header.id_flux)
    return "_".join(_UNSAFE.sub("-", part) for part in parts) + ".xml"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def release(
    outbox: Path,
    header: FluxHeader,
    passages: Iterable[DeliveredEvent],
    *,
    xsd: Path,
    max_bytes: int | None = None,
) -> ReleasedFile:
    """Render, check and publish one batch of events (see `release_passages`)."""
    profile = header.passages_as
    rendered = (flux_passage(event, profile) for event in passages)
    return release_passages(outbox, header, rendered, xsd=xsd, max_bytes=max_bytes)


def release_passages(
    outbox: Path,
    header: FluxHeader,
    passages: Iterable[FluxPassage],
    *,
    xsd: Path,
    max_bytes: int | None = None,
    subfolder: str = "",
) -> ReleasedFile:
    """Write, check and publish one batch; on any failure nothing is left under its name.
    `subfolder`: of the certifier's folder (a file written again where the state keeps it)."""
    folder = outbox / header.certifier.key / subfolder
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / file_name(header)
    temporary = folder / f".{final.name}.partial"
    fd = _open_locked(temporary)
    renamed = False
    try:
        with os.fdopen(fd, "wb", closefd=False) as handle:
            stats = write_flux(handle, header, passages, max_bytes=max_bytes)
            handle.flush()
            os.fsync(handle.fileno())
        check_file(temporary, xsd)
        digest = _sha256(temporary)
        os.replace(temporary, final)
        renamed = True
        fsync_directory(folder)
    except BaseException as exc:
        # Still ours until renamed: only the holder of the lock renames or removes it.
        if not renamed:
            temporary.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None:  # a write: "No space left"
            raise OSError(exc.errno, exc.strerror, str(final)) from exc  # says where
        raise
    finally:
        os.close(fd)
    return ReleasedFile(final, stats.passages, stats.bytes_written, digest)


def _open_locked(temporary: Path) -> int:
    """Open the batch's temporary file, empty, holding an exclusive lock on it.

    Another process may be rendering the same batch: a render worker that outlived a killed
    flush, or a second flusher. Opening the shared temporary name and truncating it under
    that process would let it publish a truncated file (or lose its own). So wait for its
    lock (kept until it has renamed or removed the file, or died), and start over if the
    name no longer holds the file that was locked.
    """
    while True:
        fd = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.path.samestat(os.fstat(fd), os.stat(temporary)):
                os.ftruncate(fd, 0)
                return fd
        except FileNotFoundError:
            pass
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def move_released(source: Path, target: Path) -> None:
    """Rename a released file into another folder of the outbox, durably (both folders fsynced).

    A rename is atomic: a reader sees the file in one folder or the other, never in both nor
    half; after a crash the state and a later reconciliation put it where the state says.
    """
    if source == target:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)
    fsync_directory(target.parent)
    fsync_directory(source.parent)


SET_ASIDE = "unknown"
"""A certifier's folder for files found among those to upload that the state does not know
as files to upload (`verify --repair` moves them there): kept, never to deposit as they are."""


def files_to_upload(outbox: Path) -> list[tuple[str, Path]]:
    """(certifier folder, file) of every XML file in a certifier's top folder, the folder of
    the files still to upload (CONTRACT §7); temporary files (a leading dot) left out."""
    found: list[tuple[str, Path]] = []
    try:  # a folder this user may not list (a monitoring account): nothing to say of it
        folders = sorted(p for p in outbox.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []
    for folder in folders:
        try:
            names = sorted(folder.glob("*.xml"))
        except OSError:
            continue
        found += [(folder.name, p) for p in names if not p.name.startswith(".") and p.is_file()]
    return found


def set_aside(path: Path) -> Path:
    """Move `path` into its folder's `unknown/`, under a name no file there has (`-2`, ...):
    atomic, durable, never over another file; a run killed between the link and the unlink
    left it there already: that name is kept, not a second copy."""
    folder = path.parent / SET_ASIDE
    folder.mkdir(exist_ok=True)
    target, n = folder / path.name, 1
    while True:
        try:
            os.link(path, target)  # fails when the name is taken: nothing is overwritten
            break
        except FileExistsError:
            if os.path.samefile(path, target):  # linked there by a run killed before unlink
                break
            n += 1
            target = folder / f"{path.stem}-{n}{path.suffix}"
    path.unlink()
    fsync_directory(folder)
    fsync_directory(path.parent)
    return target
