"""Finding the reference files in what the user downloaded: a zip, a folder, single files.

Names are matched with patterns, never by their exact date: a CSV inside
`export-fiches-csv-2026-02-02.zip` may be dated 2026_02_01. Zip entry names stored as UTF-8
without the zip's UTF-8 flag (Python reads them as cp437: `Comp├⌐tences`) are repaired,
and every name is compared in Unicode NFC form.
"""

from __future__ import annotations

import io
import re
import unicodedata
import zipfile
import zlib
from collections.abc import Callable
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO

from accrochage.errors import RefdataError

_DATE = re.compile(r"(\d{4})[-_](\d{2})[-_](\d{2})")
MAX_FILE_BYTES = 1 << 30
"""A reference file read is at most 1 GiB (France compétences' whole CSV export is a few
hundred MB at most, INSEE's files a few MB)."""
_UTF8_FLAG = 0x800


@dataclass(frozen=True, slots=True)
class Source:
    """One file to read: its (repaired) name, the container it came from, how to open it."""

    name: str
    origin: str
    """The file downloaded: the zip, or the file itself."""
    opener: Callable[[], AbstractContextManager[IO[bytes]]]
    bound: int = 0
    """The most bytes it may give (`MAX_FILE_BYTES`, or less for a zip entry: `unpacked_bound`)."""

    @property
    def limit(self) -> int:
        return self.bound or MAX_FILE_BYTES

    def read(self) -> bytes:
        """The file's bytes, through its bound: a 514 KB zip that unpacked to 512 MB took
        3.7 GB. A damaged or encrypted entry is a `RefdataError`, never a traceback."""
        bound = self.limit
        try:
            with self.opener() as stream:
                data = stream.read(bound + 1)
        except RefdataError:
            raise
        except READ_FAILURES as exc:
            raise self.unreadable(exc) from None
        if len(data) > bound:
            raise self.too_large()
        return data

    @property
    def day(self) -> date | None:
        return date_in(self.name)

    def unreadable(self, exc: BaseException) -> RefdataError:
        return RefdataError(
            f"{self.name} in {self.origin} cannot be read ({exc}): download it again"
        )

    def too_large(self) -> RefdataError:
        return RefdataError(
            f"{self.name} in {self.origin} unpacks to more than {self.limit:,} "
            "bytes, far beyond the official files: is it the file as downloaded?"
        )


READ_FAILURES = (zipfile.BadZipFile, zlib.error, RuntimeError, EOFError, OSError)
"""What reading a damaged or encrypted zip entry, or a file, raises."""


class Bounded(io.RawIOBase):
    """`stream` read through `source`'s bound: a parser reading it in a stream (the XML
    export) stops where `Source.read` would, whatever a zip bomb unpacks to."""

    def __init__(self, stream: IO[bytes], source: Source) -> None:
        self._stream = stream
        self._source = source
        self._left = source.limit

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        wanted = self._left + 1 if size is None or size < 0 else min(size, self._left + 1)
        data = self._stream.read(wanted)
        self._left -= len(data)
        if self._left < 0:
            raise self._source.too_large()
        return data


def date_in(name: str) -> date | None:
    match = _DATE.search(name)
    if match is None:
        return None
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None


def entry_name(info: zipfile.ZipInfo) -> str:
    name = info.filename
    if not info.flag_bits & _UTF8_FLAG:
        with suppress(UnicodeEncodeError, UnicodeDecodeError):
            name = name.encode("cp437").decode("utf-8")
    return unicodedata.normalize("NFC", name.rsplit("/", 1)[-1])


def _zip_sources(path: Path) -> list[Source]:
    try:
        with zipfile.ZipFile(path) as archive:
            infos = [info for info in archive.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, OSError) as exc:
        raise RefdataError(f"{path} is not a readable zip ({exc}): download it again") from None

    def opener(info: zipfile.ZipInfo) -> Callable[[], AbstractContextManager[IO[bytes]]]:
        def open_entry() -> AbstractContextManager[IO[bytes]]:
            archive = zipfile.ZipFile(path)
            stream = archive.open(info)
            return _Closing(stream, archive)

        return open_entry

    return [
        Source(entry_name(info), path.name, opener(info), unpacked_bound(info.compress_size))
        for info in infos
    ]


UNPACKED_RATIO = 100
UNPACKED_FREE = 64 * 1024 * 1024


def unpacked_bound(packed: int) -> int:
    """The most a zip entry of `packed` bytes may unpack to: CSV and XML text packs 5 to 20
    times smaller, a zip bomb a thousand times; whatever size its header claims."""
    return min(MAX_FILE_BYTES, UNPACKED_FREE + UNPACKED_RATIO * packed)


class _Closing(AbstractContextManager[IO[bytes]]):
    def __init__(self, stream: IO[bytes], archive: zipfile.ZipFile) -> None:
        self.stream = stream
        self.archive = archive

    def __enter__(self) -> IO[bytes]:
        return self.stream

    def __exit__(self, *exc: object) -> None:
        self.stream.close()
        self.archive.close()


def _file_source(path: Path) -> Source:
    def open_file() -> AbstractContextManager[IO[bytes]]:
        try:
            return path.open("rb")
        except OSError as exc:
            raise RefdataError(f"cannot read {path}: {exc.strerror}") from None

    return Source(unicodedata.normalize("NFC", path.name), path.name, open_file)


def sources(path: Path) -> list[Source]:
    """Every file under `path` (a file, a zip or a folder), zips opened, in name order."""
    if not path.exists():
        raise RefdataError(f"{path} does not exist: check the [refdata] settings")
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    found: list[Source] = []
    for file in files:
        if file.suffix.lower() == ".zip":
            found.extend(_zip_sources(file))
        else:
            found.append(_file_source(file))
    return found


def signature(path: Path | None, *, status: bool = False) -> str:
    """What changes when the files change (names, sizes, modification times); `status`:
    also when their permissions or owner do (the inode's change time), which a `chmod` that
    makes a refused file readable changes, and nothing else does."""
    if path is None or not path.exists():
        return ""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    parts = []
    for file in files:
        try:
            stat = file.stat()
        except OSError:
            continue
        part = f"{file.name}:{stat.st_size}:{stat.st_mtime_ns}"
        parts.append(f"{part}:{stat.st_ctime_ns}" if status else part)
    return "|".join(parts)
