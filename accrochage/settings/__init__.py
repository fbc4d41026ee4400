"""One typed settings object: `accrochage.toml` plus `ACCROCHAGE_*` environment overrides.

`model` holds the object, `sections` and `api` its parts, `durations` the duration kinds with
their bounds, `loading` how the file and the environment are read.
"""

from accrochage.settings.api import ApiSettings, ScopedIngestToken
from accrochage.settings.durations import parse_duration
from accrochage.settings.loading import (
    DEFAULT_CONFIG,
    anchored,
    config_path,
    describe_settings_errors,
    load_settings,
    unknown_variables,
)
from accrochage.settings.model import ENV_PREFIX, Settings
from accrochage.settings.sections import KafkaSettings

__all__ = [
    "DEFAULT_CONFIG",
    "ENV_PREFIX",
    "ApiSettings",
    "KafkaSettings",
    "ScopedIngestToken",
    "Settings",
    "anchored",
    "config_path",
    "describe_settings_errors",
    "load_settings",
    "parse_duration",
    "unknown_variables",
]
