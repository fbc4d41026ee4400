"""No silent switch of schema: a state holding 1.1.2 files must name its version, and the
XSD the files are checked against must be of the version they are written in.

1.1.5 became the default. An installation that wrote 1.1.2 files and whose configuration
does not name `schema.version` would otherwise start writing another format without anyone
deciding it; every command and service that builds the core stops instead, and says how to
choose (`app.build_core`, and `accrochage doctor` as a finding).
"""

from __future__ import annotations

from accrochage.errors import ConfigError
from accrochage.models.vocabulary import CURRENT_SCHEMA, SchemaVersion
from accrochage.settings import Settings
from accrochage.sinks.schemas import declared_version
from accrochage.state.base import Store

OLD = SchemaVersion.V1_1_2
DEFAULT = CURRENT_SCHEMA


def unchosen_schema(settings: Settings, versions_written: set[str]) -> str | None:
    """Why start-up must stop, or None: the state holds 1.1.2 files, the version is unnamed."""
    if settings.schema_.version_named or OLD.value not in versions_written:
        return None
    return (
        f"the state {settings.paths.state} holds files written with schema {OLD}, and the "
        f"default schema is now {DEFAULT} (the CDC's current kit); no version is switched "
        f'silently: add [schema] version = "{OLD}" to the configuration to keep writing '
        f'{OLD} files as before, or version = "{DEFAULT}" to switch (or set '
        "ACCROCHAGE_SCHEMA__VERSION). Switching means: new files carry action CREATION and "
        "identify a holder by the 13-character NIR when it is known, and corrections or "
        "revocations of accepted records go out as SUPPRESSION files; files already written "
        f"stay {OLD} and their reports are imported as before. Before switching, set "
        "schema.xsd to the XSD of the CDC's kit and run `accrochage doctor`"
    )


def check_schema_choice(settings: Settings, store: Store) -> None:
    """Raise `ConfigError` when the configuration must name its schema version first."""
    if settings.schema_.version_named:
        return
    with store.reading() as reader:
        written = reader.schema_versions_written()
    message = unchosen_schema(settings, written)
    if message is not None:
        raise ConfigError(message)


def check_xsd_version(settings: Settings) -> None:
    """Raise `ConfigError` when `schema.xsd` declares another version than `schema.version`:
    every file would fail its gate, at every flush, for ever (`doctor` says it as a finding)."""
    xsd = settings.schema_.xsd
    declared = declared_version(xsd) if xsd is not None else None
    version = settings.schema_.version
    if declared is not None and declared != version:
        raise ConfigError(
            f"schema.xsd ({xsd}) declares version {declared} but schema.version is {version}: "
            f"every file would fail its check; set schema.version to {declared}, or point "
            f"schema.xsd at the {version} kit's XSD"
        )
