"""One typed settings object: `accrochage.toml` plus `ACCROCHAGE_*` environment overrides."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from accrochage.settings.api import ApiSettings
from accrochage.settings.sections import (
    AlertsSettings,
    BatchingSettings,
    CertifierSettings,
    EmitterSettings,
    IngestSettings,
    KafkaSettings,
    PathsSettings,
    RefdataSettings,
    SchemaSettings,
    StateSettings,
)

ENV_PREFIX = "ACCROCHAGE_"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_prefix_target="all",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )
    """`env_prefix_target="all"`: the `schema` alias takes the prefix (ACCROCHAGE_SCHEMA__XSD)."""

    emitter: EmitterSettings
    certifiers: tuple[CertifierSettings, ...] = Field(min_length=1)
    batching: BatchingSettings = BatchingSettings()
    ingest: IngestSettings = IngestSettings()
    paths: PathsSettings = PathsSettings()
    state: StateSettings = StateSettings()
    schema_: SchemaSettings = Field(default=SchemaSettings(), alias="schema")
    api: ApiSettings = ApiSettings()
    kafka: KafkaSettings = KafkaSettings()
    refdata: RefdataSettings = RefdataSettings()
    alerts: AlertsSettings = AlertsSettings()

    @model_validator(mode="after")
    def _unique_keys(self) -> Settings:
        keys = [c.key for c in self.certifiers]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ValueError(
                f"certifiers: keys must be unique; repeated: {', '.join(duplicates)} (give "
                "each [[certifiers]] section a key of its own)"
            )
        for n, (_, scope) in enumerate(self.api.ingest_scopes, start=1):
            unknown = sorted((scope or frozenset()) - set(keys))
            if unknown:
                raise ValueError(
                    f"api.ingest_tokens #{n} certifiers names {', '.join(map(repr, unknown))}, "
                    f"not a configured certifier key (configured: {', '.join(keys)})"
                )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))
