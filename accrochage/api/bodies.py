"""Request bodies, read and decoded from their Content-Encoding here rather than by aiohttp.

aiohttp 3.14 decompresses a body in its HTTP parser. A deflate body that ends inside its
compressed stream (the two bytes `c4 dd`, say: valid deflate so far, never finished) raised
in the parser after the handler had started, and the handler then awaited the rest of the
body forever, holding its connection: every such request one stuck connection. The service
runs with aiohttp's decompression off (`api/protocol.py`) and decodes the codings it accepts
with zlib, bounded by the caller's limit, so that a lying body is a 400 at once.
"""

from __future__ import annotations

import asyncio
import codecs
import re
import zlib

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from accrochage.api.errors import ApiError, unreadable_body

ACCEPTED = ("identity", "gzip", "deflate")
_GZIP = 16 + zlib.MAX_WBITS
_ZLIB = zlib.MAX_WBITS
_RAW_DEFLATE = -zlib.MAX_WBITS
_ZLIB_METHOD = 8
"""RFC 1950: the low four bits of a zlib stream's first byte; a deflate body without them is
raw deflate, which some clients send (aiohttp and urllib3 accept it too)."""


MAX_RATIO = 100
"""The most a compressed body may grow when decoded (JSON events compress 5 to 20 times):
beyond, a body of a few kilobytes became 16 MiB held in memory and parsed (1.3 s of CPU)."""
ALWAYS_DECODED = 64 * 1024
"""What any compressed body may decode to, whatever its ratio."""
DEFAULT_BODY_SECONDS = 60.0
BODY_SECONDS = web.AppKey("body_timeout_seconds", float)
"""How long a body may take to arrive once its headers have (`api.body_timeout`)."""


class TooLarge(Exception):
    """The body, as sent or once decoded, is larger than the caller's limit."""


async def read_body(request: web.Request, limit: int) -> bytes:
    """The body decoded from its Content-Encoding, at most `limit` bytes as sent and decoded
    (`TooLarge` beyond); an `ApiError` for a body that cannot be read or decoded, or that
    does not arrive within the app's `BODY_SECONDS` (408)."""
    refuse_other_media(request)
    declared_within(request, limit)
    seconds = request.app.get(BODY_SECONDS, DEFAULT_BODY_SECONDS)
    try:
        async with asyncio.timeout(seconds):
            raw = await request.read()
    except TimeoutError:
        raise ApiError(
            408,
            "body_timeout",
            f"the body did not arrive within {seconds:g} s (api.body_timeout): send it whole",
        ) from None
    except web.HTTPRequestEntityTooLarge:
        raise TooLarge("the body is larger") from None
    except (RequestPayloadError, HttpProcessingError, ConnectionResetError) as exc:
        raise unreadable_body(type(exc).__name__) from None
    if len(raw) > limit:
        raise TooLarge(f"the body holds {len(raw)} bytes")
    body = decode_body(raw, request.headers.get("Content-Encoding"), limit)
    return as_utf8(body, request.charset, limit)


def declared_within(request: web.Request, limit: int) -> None:
    """`TooLarge` for a body whose `Content-Length` says it is over `limit`, before any of it
    is read."""
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(f"the body holds {request.content_length} bytes")


JSON_TEXT = "text/json"
"""A JSON type some clients send; not one a web page may send without asking first."""


def is_json_media(content_type: str) -> bool:
    main = content_type.strip().lower()
    return main in ("application/json", JSON_TEXT) or (
        main.startswith("application/") and main.endswith("+json")
    )


UNDECLARED = "application/octet-stream"
"""Some clients' type for bytes: read as JSON, as a body with no `Content-Type`."""


def refuse_other_media(request: web.Request) -> None:
    """`415 unsupported_media_type` for a body declared as anything but JSON; one with no
    `Content-Type`, or `application/octet-stream`, is read as JSON (scripts send these).

    This keeps out what a client did not mean as an event (a form, a file). It is no defense
    against forgery: a web page can send any type with `no-cors`; `api/browsers.py` refuses
    those by their `Origin`."""
    declared = request.headers.get("Content-Type")
    if declared is None:
        return
    main = declared.partition(";")[0].strip().lower()
    if main != UNDECLARED and not is_json_media(main):
        raise ApiError(
            415,
            "unsupported_media_type",
            "the body must be JSON: send it with Content-Type: application/json",
        )


def as_utf8(body: bytes, charset: str | None, limit: int) -> bytes:
    """A body its `Content-Type` declares in another charset than UTF-8, as UTF-8.

    JSON is UTF-8 (RFC 8259 §8.1), but a platform's HTTP client may send the text of a
    Latin-1 or Windows-1252 system and say so: read as UTF-8, every accented name made its
    event unusable. A body that is valid UTF-8 is read as UTF-8 whatever it declares (a
    client that declares Latin-1 and sends UTF-8 would otherwise have "Lefèvre" stored as
    "LefÃ¨vre"), as `ingest --encoding auto` reads files. A charset the service does not know
    is 415 (never echoed); a body that is not valid in the charset it declares stays as sent,
    and fails as an unusable event naming the byte, as an undeclared one does.
    """
    if charset is None:
        return body
    name = charset.strip()
    try:
        is_utf8 = codecs.lookup(name).name == "utf-8"
        _text_encoding(name)
    except LookupError:
        raise ApiError(
            415,
            "unsupported_charset",
            "the body's declared charset is not one the service reads: send the events as "
            "UTF-8 (Content-Type: application/json; charset=utf-8)",
        ) from None
    if is_utf8 or _is_utf8(body):
        return body
    try:
        text = _decoded(body, name)
    except UnicodeError:  # idna raises its parent for a label it cannot read
        return body
    # A lone surrogate (UTF-7 decodes one) as its JSON escape: a field error of its event.
    utf8 = text.encode("utf-8", "backslashreplace")
    if len(utf8) > limit:
        raise TooLarge(f"the body holds more than {limit} bytes once written as UTF-8")
    return utf8


WINDOWS_1252_LABELS = frozenset({"iso8859-1", "ascii"})
"""Codec names of the labels browsers read as Windows-1252 (WHATWG Encoding): a Latin-1
system's text is Windows-1252, whose `œ`, `’` and `€` Latin-1 reads as control characters."""


def _decoded(body: bytes, name: str) -> str:
    """`body` read in the charset `name`; a Latin-1 or ASCII label as Windows-1252, its five
    undefined bytes as Latin-1 (a control character, then, its event's field error)."""
    if codecs.lookup(name).name in WINDOWS_1252_LABELS:
        return "".join(
            chunk.decode("cp1252", "strict") if i % 2 == 0 else chunk.decode("latin-1")
            for i, chunk in enumerate(_CP1252_UNDEFINED.split(body))
        )
    return body.decode(name)


_CP1252_UNDEFINED = re.compile(rb"([\x81\x8d\x8f\x90\x9d]+)")


def _text_encoding(name: str) -> None:
    """LookupError unless `name` is a text encoding (base64 and rot13 are codecs too)."""
    try:
        b"a".decode(name)
    except UnicodeDecodeError:  # utf-16 and its kind: one byte is no text
        pass
    except UnicodeError:  # "undefined": decodes nothing
        raise LookupError(name) from None


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def decode_body(raw: bytes, coding: str | None, limit: int) -> bytes:
    """`raw` decoded from `coding` (one of `ACCEPTED`, any case): at most `limit` bytes
    (`TooLarge`), a whole compressed stream with nothing after it (`ApiError` 400), and a
    coding the service reads (`ApiError` 415; the header is never echoed)."""
    name = (coding or "identity").strip().lower()
    if name == "identity":
        return raw
    if name in ("gzip", "x-gzip"):
        wbits = _GZIP
    elif name == "deflate":
        wbits = _ZLIB if raw[:1] and raw[0] & 0x0F == _ZLIB_METHOD else _RAW_DEFLATE
    else:
        raise ApiError(
            415,
            "unsupported_encoding",
            "the body's Content-Encoding is not one the service reads: send it as identity, "
            "gzip or deflate",
            {"accepted": list(ACCEPTED)},
        )
    decompressor = zlib.decompressobj(wbits)
    bound = min(limit, max(ALWAYS_DECODED, len(raw) * MAX_RATIO))
    try:
        body = decompressor.decompress(raw, bound + 1)
    except zlib.error:
        raise unreadable_body() from None
    if len(body) > limit:
        raise TooLarge(f"the body decodes to more than {limit} bytes")
    if len(body) > bound:
        raise ApiError(
            413,
            "payload_too_large",
            f"the body decodes to more than {MAX_RATIO} times its {len(raw)} bytes: send "
            "events as they are, or compressed as JSON compresses",
            {"max_ratio": MAX_RATIO},
        )
    if not decompressor.eof or decompressor.unused_data:
        raise unreadable_body()
    return body
