"""How large a passage can be in a file, known before it is rendered."""

from __future__ import annotations

PASSAGE_TAGS_BOUND = 3_000
RESULT_TAGS_BOUND = 200
MAX_RESULTS = 64


def passage_size_bound(content: str) -> int:
    """An upper bound of a passage's bytes in a file, from its content JSON, without rendering.

    Every value is copied from the content, and XML escaping at most quintuples a character's
    UTF-8 bytes (`&` -> `&amp;`); the tags are bounded by the element names, at most
    `MAX_RESULTS` digital results included.
    """
    return PASSAGE_TAGS_BOUND + RESULT_TAGS_BOUND * MAX_RESULTS + 5 * len(content.encode())
