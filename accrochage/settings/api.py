"""The HTTP API's settings: where it listens, and the tokens of the operator and the platforms."""

from __future__ import annotations

import ipaddress
import re
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    model_validator,
)

from accrochage.errors import BadParameter
from accrochage.settings.durations import BodyTimeout
from accrochage.settings.sections import CertifierKey

MIN_TOKEN_CHARS = 32


def _strong_token(value: SecretStr) -> SecretStr:
    secret = value.get_secret_value()
    if secret and len(secret) < MIN_TOKEN_CHARS:
        raise ValueError(
            f"a token must hold at least {MIN_TOKEN_CHARS} characters (got {len(secret)}); "
            "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    if secret and (not secret.isascii() or any(not c.isprintable() or c.isspace() for c in secret)):
        raise ValueError("a token must be printable ASCII without spaces")
    return value


Token = Annotated[SecretStr, AfterValidator(_strong_token)]


MAX_EVENTS_PER_MINUTE = 100_000_000


def sender_name(place: int) -> str:
    """What an ingest token's requests are counted and logged under: its place in
    `api.ingest_tokens` (from 1), never its value."""
    return f"api.ingest_tokens #{place}"


OPERATOR_SENDER = "operator"
"""The sender of a request with the operator's token (or of any, without tokens)."""
_SENDER = re.compile(r"api\.ingest_tokens #[1-9][0-9]{0,5}")


def checked_sender(value: str) -> str:
    """`value` as a sender is named (`sender_name`, or `operator`); `#N` is short for
    `api.ingest_tokens #N`. Anything else is a BadParameter saying the form."""
    text = value.strip()
    if text.startswith("#"):
        text = sender_name(0).removesuffix("0") + text.removeprefix("#")
    if text != OPERATOR_SENDER and _SENDER.fullmatch(text) is None:
        raise BadParameter(
            "a sender is named as the log names it: 'api.ingest_tokens #N' (or '#N'), N the "
            "token's place in api.ingest_tokens from 1, or 'operator'"
        )
    return text


class ScopedIngestToken(BaseModel):
    """An exam platform's token that sends events for some certifiers only: an event for
    another certifier, or naming a record of another certifier, is refused (403) and kept in
    the unusable log. A bare token string sends for every certifier."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token: Token
    certifiers: tuple[CertifierKey, ...] = Field(min_length=1)
    """Keys of configured certifiers (`[[certifiers]] key`)."""
    events_per_minute: int | None = Field(default=None, ge=0, le=MAX_EVENTS_PER_MINUTE)
    """This token's own budget (`ApiSettings.events_per_minute`); None: that one."""


def _token_form(value: object) -> str:
    """A table is a scoped token, anything else a bare one: an error then names the fields
    of the form written, not pydantic's inner types for both."""
    return "scoped" if isinstance(value, dict | ScopedIngestToken) else "token"


AccessLogged = Literal["all", "errors", "off"]

IngestTokenSetting = Annotated[
    Annotated[Token, Tag("token")] | Annotated[ScopedIngestToken, Tag("scoped")],
    Discriminator(_token_form),
]


class ApiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    bind: str = "127.0.0.1:8787"
    token: Token = SecretStr("")
    """The operator's token: every route (records carry personal data)."""
    ingest_tokens: tuple[IngestTokenSetting, ...] = ()
    """Tokens of exam platforms: `POST /events`, `POST /check` and `GET /openapi.json`; each a
    string (any certifier) or `{token = "...", certifiers = ["key", ...]}` (those certifiers
    only, whose records' fate it also reads: `api/platform_view.py`)."""
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    max_events_per_request: int = Field(default=1000, ge=1, le=100_000)
    events_per_minute: int = Field(default=0, ge=0, le=MAX_EVENTS_PER_MINUTE)
    """Events (to `/events` and `/check`) each ingest token may send a minute, in bursts of
    up to a minute's worth; beyond, `429 rate_limited` with `Retry-After`, nothing stored
    (`api/budgets.py`). 0: no limit. A scoped token may have its own."""
    max_connections: int = Field(default=1000, ge=1, le=1_000_000)
    """Connections held open at once; one more is answered 503 and closed. Held below the
    process's open-files limit (raised to its hard limit at start; the service logs when that
    limit lowers this one)."""
    max_connections_per_client: int = Field(default=100, ge=1, le=1_000_000)
    """Connections one address may hold open: one client cannot take them all (behind a
    reverse proxy every client has the proxy's address: raise it to `max_connections`)."""
    body_timeout: BodyTimeout = timedelta(seconds=60)
    """A body not whole by then is answered 408, and its connection closed after aiohttp's
    lingering read (at most 10 s): a client that sends headers and then nothing, or a
    trickle, holds no connection for long."""
    access_log: AccessLogged = "all"
    """The requests the log has a line of (`api/protocol.AccessLog`): "all"; "errors", the
    answers of status 400 and above (a platform sending one event a request, Prometheus and a
    health probe make a line each otherwise); "off"."""

    @property
    def ingest_scopes(self) -> tuple[tuple[SecretStr, frozenset[str] | None], ...]:
        """Each ingest token and the certifiers it may send for (None: any)."""
        return tuple(
            (t.token, frozenset(t.certifiers)) if isinstance(t, ScopedIngestToken) else (t, None)
            for t in self.ingest_tokens
        )

    @property
    def sender_budgets(self) -> dict[str, int]:
        """Each ingest token's events a minute, by the name its requests are counted under
        (`api/auth.py`); 0: no limit."""
        return {
            sender_name(place): (
                self.events_per_minute
                if not isinstance(t, ScopedIngestToken) or t.events_per_minute is None
                else t.events_per_minute
            )
            for place, t in enumerate(self.ingest_tokens, start=1)
        }

    @property
    def host(self) -> str:
        return self.bind.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.bind.rsplit(":", 1)[1])

    @model_validator(mode="after")
    def _token_off_loopback(self) -> ApiSettings:
        port = self.bind.rsplit(":", 1)[1] if ":" in self.bind else ""
        if not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
            raise ValueError(
                f"bind must be HOST:PORT with a port from 1 to 65535, got {self.bind!r}"
            )
        if not _is_loopback(self.host) and not self.token.get_secret_value():
            raise ValueError(
                f"api.token is required when api.bind ({self.bind}) is not a loopback address"
            )
        _no_token_twice(self.token, [token for token, _ in self.ingest_scopes])
        scoped = any(scope is not None for _, scope in self.ingest_scopes)
        if scoped and not self.token.get_secret_value():
            raise ValueError(
                "api.token is required with an ingest token scoped to certifiers: without it "
                "every other route (the records of every certifier) answers without a token"
            )
        _budgets_fit(self.sender_budgets, self.max_events_per_request)
        return self


def _budgets_fit(budgets: dict[str, int], per_request: int) -> None:
    """A budget below `max_events_per_request` would refuse a whole array for good."""
    for sender, per_minute in budgets.items():
        if 0 < per_minute < per_request:
            raise ValueError(
                f"{sender} may send {per_minute} events a minute, fewer than "
                f"api.max_events_per_request ({per_request}): an array that large would never "
                "be taken; raise events_per_minute or lower api.max_events_per_request"
            )


def _no_token_twice(operator: SecretStr, ingest: list[SecretStr]) -> None:
    """One token, one sender: given twice, the operator's wins over a platform's (its scope
    lost: every certifier's records readable) and a bare one over a scoped one."""
    seen = {operator.get_secret_value(): "api.token"} if operator.get_secret_value() else {}
    for place, token in enumerate(ingest, start=1):
        secret = token.get_secret_value()
        if not secret:
            continue
        if secret in seen:
            raise ValueError(
                f"api.ingest_tokens #{place} is the same token as {seen[secret]}: each sender "
                "needs a token of its own (generate one with: python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))')"
            )
        seen[secret] = f"api.ingest_tokens #{place}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
