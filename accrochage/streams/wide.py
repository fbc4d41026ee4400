"""UTF-16 and UTF-32 files read as UTF-8 lines, so that the readers split them as any other.

A byte 0x0A may be half of a UTF-16 character and a UTF-16 line break is two bytes: lines are
found in the decoded text. A file that stops being valid UTF-16/32 stops being read there
(`InputError`, naming the byte): what was read before it is kept (`ingest` stores it,
`check` answers it).
"""

from __future__ import annotations

import codecs
from typing import IO

from accrochage.errors import InputError

CHUNK_BYTES = 64 * 1024


class Utf8Lines:
    """`readline(limit)` over a wide-encoded stream: UTF-8 bytes of at most `limit` characters
    (a longer line comes in pieces, the last one ending with its line break, as a binary
    file's `readline(limit)` does)."""

    def __init__(self, stream: IO[bytes], codec: str, name: str) -> None:
        self._stream = stream
        self._codec = codec
        self._name = name
        self._decoder = codecs.getincrementaldecoder(codec)("strict")
        self._text = ""
        self._at = 0
        """Where in `_text` the next line starts (a line returned is not copied out again)."""
        self._read = 0
        self._ended = False

    def readline(self, limit: int = -1) -> bytes:
        while True:
            found = self._text.find("\n", self._at)
            end = found + 1 if found >= 0 else len(self._text)
            if 0 <= limit <= end - self._at:
                end = self._at + limit
            elif found < 0 and not self._ended:
                self._fill()
                continue
            line, self._at = self._text[self._at : end], end
            return line.encode("utf-8", "surrogatepass")

    def _fill(self) -> None:
        chunk = self._stream.read(CHUNK_BYTES)
        try:
            text = self._decoder.decode(chunk, final=not chunk)
        except UnicodeError as exc:  # "does not start with BOM" is no UnicodeDecodeError
            at = self._read + (exc.start if isinstance(exc, UnicodeDecodeError) else 0) + 1
            raise InputError(
                f"{self._name}: is not valid {self._codec} at byte {at}; the events before it "
                "were read, none after it: save the file again (as UTF-8 preferably)"
            ) from None
        self._read += len(chunk)
        self._ended = not chunk
        self._text, self._at = self._text[self._at :] + text, 0
