"""Reading the settings: the configuration file, the environment, and paths anchored to the file."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails
from pydantic_settings import SettingsConfigDict, SettingsError

from accrochage.errors import ConfigError
from accrochage.settings.model import ENV_PREFIX, Settings
from accrochage.settings.toml_lines import Loc, key_lines, line_of

DEFAULT_CONFIG = Path("accrochage.toml")


def config_path(explicit: Path | None = None) -> Path:
    if explicit is not None:
        return explicit
    from_env = os.environ.get("ACCROCHAGE_CONFIG")
    return Path(from_env) if from_env else DEFAULT_CONFIG


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Read the TOML file (and the environment); a missing or wrong setting names itself."""
    source = config_path(path)
    if not source.is_file():
        raise ConfigError(
            f"configuration file {source} not found: pass --config PATH, set ACCROCHAGE_CONFIG, "
            "or copy accrochage.example.toml to ./accrochage.toml"
        )

    _utf8(source)

    class _FromFile(Settings):
        model_config = SettingsConfigDict(toml_file=source)

    unknown = unknown_variables(os.environ)
    if unknown:
        raise ConfigError(
            f"{', '.join(unknown)}: not a setting; a setting's variable is "
            "ACCROCHAGE_<SECTION>__<KEY> (e.g. ACCROCHAGE_API__TOKEN): check its spelling"
        )
    emptied = emptied_secrets(os.environ)
    if emptied:
        raise ConfigError(
            f"{', '.join(emptied)}: set but empty, it would replace the file's token with none "
            "(on a loopback bind the API then answers anyone without one): unset it to keep "
            "the file's, or give it the token"
        )
    try:
        # The folder as it really is: the same folder reached by `..` or through a link is
        # one outbox, not a move of the state's files at each run.
        return anchored(_FromFile(**overrides), source.absolute().parent.resolve())
    except ValidationError as exc:
        raise ConfigError(describe_settings_errors(source, exc)) from None
    except SettingsError as exc:
        raise ConfigError(_unreadable_variable(exc)) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{source}: cannot read the configuration: {exc}") from None


_FIELD = re.compile(r'field "([^"]+)"')


def _unreadable_variable(exc: SettingsError) -> str:
    """The variables of the section pydantic-settings could not read (it names the section
    only, as a field): with several ACCROCHAGE_* set, the operator was left to guess which,
    and the example named ACCROCHAGE_API__INGEST_TOKENS for an `alerts.webhooks` URL."""
    found = _FIELD.search(str(exc))
    variables = _variables_of(found.group(1)) if found else []
    which = ", ".join(variables) if variables else "an ACCROCHAGE_* variable"
    example = variables[0] if len(variables) == 1 else "ACCROCHAGE_API__INGEST_TOKENS"
    return f"{which}: cannot be read ({exc}): {_json_example(example)}"


def _json_example(variable: str) -> str:
    """How to write `variable` as JSON: a whole section (ACCROCHAGE_API) is an object; told
    to write a list, the operator only met the next error."""
    named = variable.upper().removeprefix(ENV_PREFIX)
    if "__" in named or named == "CERTIFIERS":
        return f"""a list setting takes JSON, e.g. {variable}='["..."]'"""
    return f"""a whole section takes a JSON object, e.g. {variable}='{{"key": "value"}}'"""


def _utf8(source: Path) -> None:
    """TOML is UTF-8 without a byte order mark: a file saved by an editor in Latin-1 or
    with a BOM was refused as "'utf-8' codec can't decode byte 0xe9 in position 4379" or
    "Invalid statement (at line 1, column 1)", with nothing saying what to change."""
    try:
        data = source.read_bytes()
    except OSError:
        return  # reading it again says why
    if data.startswith(b"\xef\xbb\xbf"):
        raise ConfigError(
            f"{source} starts with a byte order mark (BOM): save it as UTF-8 without BOM"
        )
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{source}: line {line} is not UTF-8 (an accent saved as Latin-1 or Windows-1252?): "
            "save the file as UTF-8"
        ) from None


def anchored(settings: Settings, folder: Path) -> Settings:
    """Relative paths read from the configuration file's folder, whoever runs a command from
    wherever: a `flush` from cron in a home folder created a new, empty state there and said
    "nothing due", and an `ingest` would have split the records between two states."""

    def at(path: Path | None) -> Path | None:
        return path if path is None or path.is_absolute() else folder / path

    paths, schema, refdata = settings.paths, settings.schema_, settings.refdata
    _not_left_behind(paths.state, folder)
    return settings.model_copy(
        update={
            "paths": paths.model_copy(
                update={"state": at(paths.state), "outbox": at(paths.outbox)}
            ),
            "schema_": schema.model_copy(update={"xsd": at(schema.xsd)}),
            "refdata": refdata.model_copy(
                update={"rncp": at(refdata.rncp), "cog": at(refdata.cog)}
            ),
        }
    )


def _not_left_behind(state: Path, folder: Path) -> None:
    """An installation run from another folder than its configuration's, before relative
    paths were read from the configuration's folder, has its state where it ran: a new empty
    state would be created beside the configuration, and the records split in two."""
    if state.is_absolute() or (folder / state).exists():
        return
    before = Path.cwd() / state
    if before.exists() and before.resolve() != (folder / state).resolve():
        raise ConfigError(
            f"paths.state {state} is read from the configuration file's folder "
            f"({folder / state}), where there is no state, and there is one at {before} "
            "(from the folder this runs in, where earlier versions read it): "
            "move the state (and its outbox) beside the configuration, or set an absolute "
            "paths.state and paths.outbox"
        )


NOT_SETTINGS = frozenset(
    {
        "ACCROCHAGE_CONFIG",
        "ACCROCHAGE_FAILPOINT",
        "ACCROCHAGE_TEST_KAFKA",
        "ACCROCHAGE_KAFKA_SEED",
        "ACCROCHAGE_CRASH_SEED",
        "ACCROCHAGE_SHARED",
    }
)
"""ACCROCHAGE_* variables that are not settings: the configuration file's path, and the test
suite's and benchmarks' own knobs."""


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """ACCROCHAGE_* variables that name no setting (a misspelt section, a single `_` where
    `__` goes): ignored, they would leave a setting the operator believes set at its default
    (an API without the token they meant to require)."""
    fields = {(f.alias or name).upper() for name, f in Settings.model_fields.items()}
    found = []
    for variable in environ:
        # Read whatever its case (pydantic-settings is not case-sensitive), so checked so.
        named = variable.upper()
        if not named.startswith(ENV_PREFIX) or named in NOT_SETTINGS:
            continue
        section = named.removeprefix(ENV_PREFIX).split("__", 1)[0]
        if section not in fields:
            found.append(variable)
    return sorted(found)


SECRET_VARIABLES = frozenset({"ACCROCHAGE_API__TOKEN"})
"""Variables whose empty value would silently take a secret away: an `EnvironmentFile`
template or a compose `${TOKEN}` left unset gave an API without its token."""


def emptied_secrets(environ: Mapping[str, str]) -> list[str]:
    return sorted(
        v for v, value in environ.items() if v.upper() in SECRET_VARIABLES and not value.strip()
    )


def describe_settings_errors(source: Path, exc: ValidationError) -> str:
    errors = _without_echoes(exc.errors())
    placed = _key_lines(source)
    lines = [f"{source}: {len(errors)} wrong or missing setting(s):"]
    for error in errors:
        loc = tuple(_TOML_KEY.get(str(part), part) for part in _untagged(error["loc"]))
        where = ".".join(str(part) for part in loc)
        variables = _variables_of(where)
        origin = f" (from {', '.join(variables)})" if variables else ""
        place = "" if variables else _place(placed, loc)
        message = _error_message(error)
        if any(_INDEXED.search(v) for v in variables):
            message += (
                "; a list is set whole from the environment, as JSON (e.g. "
                f"{ENV_PREFIX}CERTIFIERS='[{{\"key\": ...}}]'), never one item by its index"
            )
        # A check across sections has no place of its own: its message names the keys.
        lines.append(f"  - {where}{origin}: {message}{place}" if where else f"  - {message}")
    return "\n".join(lines)


def _key_lines(source: Path) -> dict[Loc, int]:
    try:
        return key_lines(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeError):
        return {}


def _place(placed: dict[Loc, int], loc: Loc) -> str:
    """Where in the file a wrong setting is written, or the table a missing one goes in."""
    found = line_of(placed, loc)
    if found is None:
        return ""
    number, own = found
    return f" (line {number})" if own else f" (in the table at line {number})"


_TOML_KEY = {"schema_": "schema"}
"""Settings whose TOML key is not their Python name: errors name the key as written."""


def _without_echoes(errors: list[ErrorDetails]) -> list[ErrorDetails]:
    """Without a list's "at least 1 item" when an item of it is refused: pydantic counts the
    refused item out and says so too, and `certifications = ["rs5875"]` read as a second
    fault, an empty list, beside the code's own."""
    return [
        error
        for error in errors
        if error["type"] != "too_short"
        or not any(
            other["loc"][: len(error["loc"])] == error["loc"] and other["loc"] != error["loc"]
            for other in errors
        )
    ]


_INDEXED = re.compile(r"__[0-9]+(__|$)")
_TAGGED = ("api", "ingest_tokens")
"""A list whose items take one form or another (`settings/api.py`): the form's tag is no
setting's name."""


def _untagged(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    if loc[:2] == _TAGGED and len(loc) > 3 and isinstance(loc[2], int):
        return (*loc[:3], *loc[4:])
    return loc


def _variables_of(where: str) -> list[str]:
    """The ACCROCHAGE_* variables a wrong setting may come from: its own, one holding it
    (`ACCROCHAGE_API` as JSON), or one inside it (`ACCROCHAGE_CERTIFIERS__0__KEY` makes
    `certifiers` not a list); never another key of its section: a wrong `max_records` in the
    file was said to come from a sound ACCROCHAGE_BATCHING__TICK."""
    parts = where.upper().split(".")
    found = []
    for variable in os.environ:
        if not variable.upper().startswith(ENV_PREFIX):
            continue
        named = variable.upper().removeprefix(ENV_PREFIX).split("__")
        shared = min(len(named), len(parts))
        if named[:shared] == parts[:shared]:
            found.append(variable)
    return sorted(found)


def _error_message(error: ErrorDetails) -> str:
    if error["type"] == "extra_forbidden":
        return (
            "unknown setting (check its spelling against accrochage.example.toml; "
            "an environment variable is ACCROCHAGE_<SECTION>__<KEY>)"
        )
    if error["type"] == "tuple_type":  # "Input should be a valid tuple": Python's word
        if error["loc"] == ("certifiers",):
            return (
                "expected one [[certifiers]] section (double brackets) per certifier, "
                "each with key, id_client, id_contrat and certifications"
            )
        return 'expected a list in brackets, even of one item: ["first", "second"]'
    message = error["msg"]
    return message.removeprefix("Value error, ")
