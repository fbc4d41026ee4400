"""An error raised in another process of accrochage keeps its class once its code crossed."""

from __future__ import annotations

import pytest

from accrochage.errors import (
    AccrochageError,
    ConfigError,
    StorageFullError,
    StoreBusyError,
    StoreError,
    rebuilt,
)


@pytest.mark.parametrize(
    "cls", [ConfigError, StoreError, StorageFullError, StoreBusyError, AccrochageError]
)
def test_each_class_comes_back_as_itself(cls: type[AccrochageError]) -> None:
    again = rebuilt(cls.code, "what is wrong; how to fix it")
    assert type(again) is cls
    assert (again.code, again.status, str(again)) == (
        cls.code,
        cls.status,
        "what is wrong; how to fix it",
    )


def test_an_unknown_code_is_the_root_class_with_its_message() -> None:
    again = rebuilt("from_a_newer_version", "said there")
    assert type(again) is AccrochageError and str(again) == "said there"


def test_a_class_that_needs_more_than_a_message_comes_back_as_the_root() -> None:
    """`FieldError` needs its field: rebuilt from a code and a message it raised TypeError."""
    again = rebuilt("invalid_body", "note: too long")
    assert type(again) is AccrochageError and str(again) == "note: too long"


def test_a_platform_is_told_whether_sending_again_later_helps() -> None:
    from accrochage.api.errors import for_others
    from accrochage.errors import StoreBusyError, WriterUnavailable

    assert "send it again later" in for_others(StoreBusyError("held by process 12"))
    told = for_others(WriterUnavailable("the writer process ended"))
    assert "until its operator restarts it" in told and "again later" not in told
    assert "process 12" not in for_others(StoreBusyError("held by process 12"))
