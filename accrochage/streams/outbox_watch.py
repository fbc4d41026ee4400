"""Which placed files the batch cut's tick must look for: those of the folders changed since
every file the state places in them was last found there (or found nowhere, with nothing a
tick can do for it: a reported file archived away from done/).

A file removed, renamed or replaced changes its folder's modification and change times (the
change time cannot be set back by hand); a folder removed and made again is another inode. A
folder with the same device, inode and times as when each of its files was found still holds
them: one stat a folder (about 160 for a year's 4,079 files), not one a file, at every tick;
and every `LOOKED_AGAIN_NS` each folder is looked in whatever its stamp says.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

Stamp = tuple[int, int, int, int]
"""A folder's device, inode, modification and change times (ns)."""

SETTLED_NS = 2_000_000_000
"""A folder changed less than this long before it was looked at may change again within the
same tick of its file system's clock (a coarse one), leaving its times as they were: it is
looked in again at the next tick, until it is older."""

LOOKED_AGAIN_NS = 600 * 1_000_000_000
"""How long a folder whose files were all found goes without being looked in, whatever its
stamp: a file system that keeps a folder's times when a file in it is removed (a FUSE mount
of an object store, a share whose attributes are cached) left a missing file unseen for as
long as the service ran; now for ten minutes at most."""


def folder_of(path: str) -> str:
    return os.path.dirname(path)


def _by_folder(placed: Iterable[tuple[str, str]]) -> dict[str, frozenset[str]]:
    """The placed files' paths, by folder."""
    paths: dict[str, set[str]] = {}
    for _, path in placed:
        paths.setdefault(folder_of(path), set()).add(path)
    return {folder: frozenset(files) for folder, files in paths.items()}


@dataclass(frozen=True)
class Look:
    """The folders to look in at one tick, each with its stamp taken before any of its files
    was looked for, and every folder's placed files then."""

    stamps: dict[str, Stamp | None]
    placed: dict[str, frozenset[str]]


def stamp_of(folder: str) -> Stamp | None:
    """The folder's stamp, or None when it cannot be read (removed, a volume gone)."""
    try:
        info = os.stat(folder)
    except OSError:
        return None
    return info.st_dev, info.st_ino, info.st_mtime_ns, info.st_ctime_ns


class FolderWatch:
    """The outbox folders whose every placed file was found there, with their stamps then."""

    def __init__(
        self,
        wall_ns: Callable[[], int] = time.time_ns,
        monotonic_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self._wall_ns = wall_ns
        self._monotonic_ns = monotonic_ns
        self._held: dict[str, tuple[Stamp | None, frozenset[str], int]] = {}

    def to_look_in(self, placed: Iterable[tuple[str, str]]) -> Look:
        """The folders whose files must be looked for, each with its stamp taken now (before
        any file is): a folder unknown, changed since, or with a file placed in it since."""
        paths = _by_folder(placed)
        look: dict[str, Stamp | None] = {}
        oldest = self._monotonic_ns() - LOOKED_AGAIN_NS
        for folder, files in paths.items():
            stamp = stamp_of(folder)
            held = self._held.get(folder)
            if held is None or held[0] != stamp or not files <= held[1] or held[2] <= oldest:
                look[folder] = stamp
        return Look(look, paths)

    def all_found(self, looked: Look, gone: set[str]) -> None:
        """Remember the folders `looked` in, as they were before their files were looked for,
        but for those in `gone`: the folders of the missing files a tick dealt with, or must
        look for again at the next one. A folder that is no more (None: a done/ archived
        whole) is remembered so too: made again, it has a stamp, and is looked in."""
        settled, now = self._wall_ns() - SETTLED_NS, self._monotonic_ns()
        for folder, stamp in looked.stamps.items():
            changing = stamp is not None and max(stamp[2], stamp[3]) > settled
            if folder in gone or changing:
                self._held.pop(folder, None)
                continue
            self._held[folder] = (stamp, looked.placed.get(folder, frozenset()), now)
