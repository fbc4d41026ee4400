"""Option types shared by the commands: days and windows bounded as the HTTP API bounds them."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import click

from accrochage.errors import BadParameter
from accrochage.models.deadline import FIRST_DAY, LAST_DAY, MAX_DUE_WITHIN
from accrochage.settings.api import checked_sender

_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class Day(click.ParamType):
    """A `YYYY-MM-DD` day from `FIRST_DAY` to `LAST_DAY`: a usage error (exit 2) otherwise,
    never an overflow further on."""

    name = "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> date:
        if isinstance(value, date):
            return value
        text = str(value)
        try:
            if not _DAY.fullmatch(text):
                raise ValueError(text)
            parsed = date.fromisoformat(text)
        except ValueError:
            self.fail(f"{text[:40]!r} is not a day YYYY-MM-DD", param, ctx)
        if not FIRST_DAY <= parsed <= LAST_DAY:
            self.fail(f"{parsed} is outside {FIRST_DAY} to {LAST_DAY}", param, ctx)
        return parsed


DAY = Day()
DUE_WITHIN = click.IntRange(0, MAX_DUE_WITHIN)


def sender_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """`--sender`: as the service's log names an HTTP sender; a usage error otherwise."""
    if value is None:
        return None
    try:
        return checked_sender(value)
    except BadParameter as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


SENDER_HELP = (
    "Those this HTTP sender sent: 'api.ingest_tokens #N' (or '#N'), as the service's log names "
    "a platform's token, or 'operator'."
)


def said_if_unknown(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A `--certifier` key the configuration does not name is said on stderr: a typo would
    otherwise list nothing and exit 0. Not refused: the state may hold records of a certifier
    taken out of the configuration since."""
    settings = getattr(ctx.obj, "settings", None)
    keys = [c.key for c in settings.certifiers] if settings is not None else []
    if value is not None and keys and value not in keys:
        click.echo(
            f"note: {value[:100]!r} is not a certifier of the configuration (configured: "
            f"{', '.join(keys)}); only the state's records of that key, if any, are concerned",
            err=True,
        )
    return value
