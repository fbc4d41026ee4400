"""Request bodies decoded from their Content-Encoding by the service (`api/bodies.py`)."""

from __future__ import annotations

import gzip
import zlib

import pytest

from accrochage.api.bodies import TooLarge, decode_body
from accrochage.api.errors import ApiError

JSON = b'{"record_id": "B-1", "certifier": "pix"}'
LIMIT = 1024


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("body", "coding"),
    [
        (JSON, None),
        (JSON, "identity"),
        (gzip.compress(JSON), "gzip"),
        (gzip.compress(JSON), " GZip "),
        (gzip.compress(JSON), "x-gzip"),
        (zlib.compress(JSON), "deflate"),
        (raw_deflate(JSON), "deflate"),
    ],
)
def test_each_accepted_coding_gives_the_body_as_written(body: bytes, coding: str | None) -> None:
    assert decode_body(body, coding, LIMIT) == JSON


@pytest.mark.parametrize(
    ("body", "coding"),
    [
        (b"\xc4\xdd", "deflate"),  # raw deflate so far, never finished: aiohttp hung on it
        (b"\x6b\xe4", "deflate"),
        (zlib.compress(JSON)[:-4], "deflate"),
        (gzip.compress(JSON)[:-8], "gzip"),
        (b"", "gzip"),
        (JSON, "gzip"),
        (JSON, "deflate"),
        (gzip.compress(JSON) + b"trailing", "gzip"),
    ],
)
def test_a_body_that_is_not_one_whole_stream_of_its_coding_is_400(body: bytes, coding: str) -> None:
    with pytest.raises(ApiError) as refused:
        decode_body(body, coding, LIMIT)
    assert (refused.value.status, refused.value.code) == (400, "bad_body")


@pytest.mark.parametrize("coding", ["br", "zstd", "compress", "gzip, deflate", "x-unknown"])
def test_a_coding_the_service_does_not_read_is_415_without_echoing_it(coding: str) -> None:
    with pytest.raises(ApiError) as refused:
        decode_body(JSON, coding, LIMIT)
    assert (refused.value.status, refused.value.code) == (415, "unsupported_encoding")
    assert coding not in str(refused.value)


def test_a_body_larger_than_the_limit_once_decoded_is_refused_without_inflating_it_all() -> None:
    bomb = gzip.compress(b" " * (10 * 1024 * 1024))
    with pytest.raises(TooLarge):
        decode_body(bomb, "gzip", LIMIT)
    assert decode_body(gzip.compress(b" " * LIMIT), "gzip", LIMIT) == b" " * LIMIT
