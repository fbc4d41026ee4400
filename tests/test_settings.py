"""The configuration: unknown keys refused, every key overridable from the environment, bounds."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr, ValidationError

from accrochage.errors import ConfigError
from accrochage.settings import Settings, load_settings
from tests.test_tracker import write_config

TOKEN = "t" * 40

# One valid value per key, different from its default: a key added to a section without a
# sample here fails `test_every_key_is_overridden_by_its_environment_variable`.
SAMPLES: dict[str, dict[str, tuple[str, Any]]] = {
    "emitter": {
        "id_client": ("99ZZZ999", "99ZZZ999"),
        "nature": ("TIERS_CONFIANCE", "TIERS_CONFIANCE"),
    },
    "batching": {
        "max_records": ("17", 17),
        "max_file_bytes": ("150000", 150_000),
        "max_delay": ("2h", timedelta(hours=2)),
        "deadline_margin": ("3d", timedelta(days=3)),
        "tick": ("7s", timedelta(seconds=7)),
        "render_processes": ("3", 3),
    },
    "ingest": {
        "decode_processes": ("2", 2),
    },
    "paths": {
        "state": ("/srv/accrochage/state.db", Path("/srv/accrochage/state.db")),
        "outbox": ("/srv/accrochage/outbox", Path("/srv/accrochage/outbox")),
    },
    "state": {
        "lock_wait": ("2m", timedelta(minutes=2)),
        "keep_free_bytes": ("1048576", 1048576),
        "forget_dismissed_after": ("30d", timedelta(days=30)),
    },
    "refdata": {
        "rncp": ("/srv/refdata/fc", Path("/srv/refdata/fc")),
        "cog": ("/srv/refdata/cog", Path("/srv/refdata/cog")),
        "max_age": ("7d", timedelta(days=7)),
    },
    "schema": {
        "version": ("1.1.5", "1.1.5"),
        "xsd": ("/srv/kit/cdc.xsd", Path("/srv/kit/cdc.xsd")),
    },
    "api": {
        "bind": ("127.0.0.1:9999", "127.0.0.1:9999"),
        "token": (TOKEN, TOKEN),
        "ingest_tokens": (f'["{TOKEN}"]', [TOKEN]),
        "max_body_bytes": ("2048", 2048),
        "max_connections": ("500", 500),
        "max_connections_per_client": ("20", 20),
        "max_events_per_request": ("5", 5),
        "events_per_minute": ("600", 600),
        "body_timeout": ("90s", timedelta(seconds=90)),
        "access_log": ("errors", "errors"),
    },
    "alerts": {
        "webhooks": ('["http://hooks.example/a"]', ["http://hooks.example/a"]),
        "alertmanager": ("http://alertmanager:9093", "http://alertmanager:9093"),
        "topic": ("t.alerts", "t.alerts"),
        "repeat": ("2h", timedelta(hours=2)),
        "unreported_after": ("5d", timedelta(days=5)),
    },
    "kafka": {
        "bootstrap": ("kafka:9093", "kafka:9093"),
        "topic": ("t.delivered", "t.delivered"),
        "rejected_topic": ("t.rejected", "t.rejected"),
        "partitions": ("3", 3),
        "replication": ("2", 2),
        "group": ("elsewhere", "elsewhere"),
        "session_timeout": ("30s", timedelta(seconds=30)),
    },
}


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _sections() -> list[tuple[str, str, type[BaseModel]]]:
    out = []
    for name, field in Settings.model_fields.items():
        if name == "certifiers":
            continue
        model = field.annotation
        assert isinstance(model, type) and issubclass(model, BaseModel), name
        out.append((field.alias or name, name, model))
    return out


def test_every_key_is_overridden_by_its_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path)
    walked = 0
    for section, attribute, model in _sections():
        for key in model.model_fields:
            assert key in SAMPLES.get(section, {}), f"no sample for {section}.{key}: add one"
            text, expected = SAMPLES[section][key]
            variable = f"ACCROCHAGE_{section.upper()}__{key.upper()}"
            with monkeypatch.context() as env:
                env.setenv(variable, text)
                settings = load_settings(config)
            value = _plain(getattr(getattr(settings, attribute), key))
            assert value == expected, variable
            walked += 1
    assert walked >= 20


def test_a_variable_without_the_prefix_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCHEMA__XSD", "/somewhere/else.xsd")
    monkeypatch.setenv("SCHEMA__VERSION", "1.1.2")
    monkeypatch.setenv("BATCHING__MAX_RECORDS", "3")
    settings = load_settings(write_config(tmp_path))
    assert settings.schema_.xsd is None
    assert settings.schema_.version == "1.1.5"
    assert not settings.schema_.version_named
    assert settings.batching.max_records == 1000


def test_the_default_schema_is_1_1_5_and_known_as_not_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`version_named` tells the start-up guard whether the user chose (TOML or variable)."""
    default = load_settings(write_config(tmp_path))
    assert default.schema_.version == "1.1.5"
    assert not default.schema_.version_named
    only_xsd = load_settings(write_config(tmp_path, schema={"xsd": ""}))
    assert (only_xsd.schema_.version, only_xsd.schema_.version_named) == ("1.1.5", False)
    named = load_settings(write_config(tmp_path, schema={"version": "1.1.2"}))
    assert (named.schema_.version, named.schema_.version_named) == ("1.1.2", True)
    monkeypatch.setenv("ACCROCHAGE_SCHEMA__VERSION", "1.1.5")
    from_env = load_settings(write_config(tmp_path))
    assert (from_env.schema_.version, from_env.schema_.version_named) == ("1.1.5", True)


@pytest.mark.parametrize(
    ("sections", "extra", "named"),
    [
        ({}, '[schema]\nversoin = "1.1.5"\n', "schema.versoin"),
        ({"batching": {"max_recs": 3}}, "", "batching.max_recs"),
        ({"paths": {"stat": "x.db"}}, "", "paths.stat"),
        ({}, '[kafka]\ntopik = "x"\n', "kafka.topik"),
        ({}, '[emitter2]\nid_client = "03VML243"\n', "emitter2"),
        (
            {},
            '[[certifiers]]\nkey = "c"\nid_client = "03VML243"\nid_contrat = "X"\n'
            'certifications = ["RS1"]\ntik = "3s"\n',
            "certifiers.2.tik",
        ),
    ],
)
def test_an_unknown_key_is_refused_with_its_name(
    tmp_path: Path, sections: dict[str, Any], extra: str, named: str
) -> None:
    config = write_config(tmp_path, **sections)
    config.write_text(config.read_text(encoding="utf-8") + "\n" + extra, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert f"{named}: unknown setting" in str(caught.value)


def test_a_file_not_in_utf_8_says_where_and_how_to_save_it(tmp_path: Path) -> None:
    """An accent saved as Latin-1, or a BOM, was a decoder's error or "Invalid statement"."""
    config = write_config(tmp_path)
    text = config.read_text(encoding="utf-8")
    config.write_bytes(text.encode() + "# organisme certifi\u00e9\n".encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    line = text.count("\n") + 1
    assert f"line {line} is not UTF-8" in str(caught.value)
    assert "save the file as UTF-8" in str(caught.value)
    config.write_bytes(b"\xef\xbb\xbf" + text.encode())
    with pytest.raises(ConfigError, match=r"byte order mark .*save it as UTF-8 without BOM"):
        load_settings(config)


def test_an_unknown_key_from_the_environment_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACCROCHAGE_BATCHING__MAX_RECS", "3")
    with pytest.raises(
        ConfigError,
        match=r"batching\.max_recs \(from ACCROCHAGE_BATCHING__MAX_RECS\): unknown setting",
    ):
        load_settings(write_config(tmp_path))


@pytest.mark.parametrize(
    "variable", ["ACCROCHAGE_BATCHNG__MAX_RECORDS", "ACCROCHAGE_API_TOKEN", "ACCROCHAGE_TOKEN"]
)
def test_a_variable_that_names_no_setting_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    """Ignored, it would leave a setting the operator believes set at its default (an API
    without the token they meant to require)."""
    monkeypatch.setenv(variable, "x" * 40)
    with pytest.raises(ConfigError, match=f"{variable}: not a setting"):
        load_settings(write_config(tmp_path))


def test_a_list_item_set_from_the_environment_names_its_variable_and_the_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`certifiers: Input should be a valid list` named no variable: the operator read a
    valid TOML list and was stuck."""
    monkeypatch.setenv("ACCROCHAGE_CERTIFIERS__0__KEY", "zz")
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config(tmp_path))
    said = str(caught.value)
    assert "certifiers (from ACCROCHAGE_CERTIFIERS__0__KEY)" in said
    assert "a list is set whole from the environment, as JSON" in said


def test_a_wrong_value_from_the_environment_names_its_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACCROCHAGE_BATCHING__MAX_RECORDS", "0")
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config(tmp_path))
    assert "batching.max_records (from ACCROCHAGE_BATCHING__MAX_RECORDS)" in str(caught.value)
    monkeypatch.delenv("ACCROCHAGE_BATCHING__MAX_RECORDS")
    monkeypatch.setenv("ACCROCHAGE_API__INGEST_TOKENS", "t" * 40)
    with pytest.raises(ConfigError, match="a list setting takes JSON"):
        load_settings(write_config(tmp_path))


def test_a_whole_section_not_in_json_is_told_to_be_an_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ACCROCHAGE_API is the [api] section whole: told to write a list, the operator met the
    next error."""
    monkeypatch.setenv("ACCROCHAGE_API", "bind=127.0.0.1:8787")
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config(tmp_path))
    said = str(caught.value)
    assert "ACCROCHAGE_API: cannot be read" in said
    assert "a whole section takes a JSON object" in said and "list" not in said


def test_a_wrong_value_in_the_file_is_not_blamed_on_another_keys_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A variable setting another key of the section was named as the wrong value's origin:
    the operator checked a sound variable and not the file."""
    monkeypatch.setenv("ACCROCHAGE_BATCHING__TICK", "7s")
    config = write_config(tmp_path, batching={"max_records": "many"})
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    said = str(caught.value)
    assert "  - batching.max_records: " in said, said
    assert "ACCROCHAGE_BATCHING__TICK" not in said


def test_a_list_not_in_json_names_its_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pydantic-settings names the section only ("field alerts"): with other variables set,
    the operator was left to guess, and the example was another list's."""
    monkeypatch.setenv("ACCROCHAGE_API__TOKEN", "t" * 40)
    monkeypatch.setenv("ACCROCHAGE_ALERTS__WEBHOOKS", "https://hooks.example/SECRETPART")
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config(tmp_path))
    said = str(caught.value)
    assert said.startswith("ACCROCHAGE_ALERTS__WEBHOOKS: cannot be read"), said
    assert """e.g. ACCROCHAGE_ALERTS__WEBHOOKS='["..."]'""" in said
    assert "SECRETPART" not in said and "ACCROCHAGE_API__TOKEN" not in said


def test_a_webhook_url_is_never_quoted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "hooks.slack.com/services/T000/B000/XXXXSECRET"
    monkeypatch.setenv("ACCROCHAGE_ALERTS__WEBHOOKS", f'["{secret}"]')
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config(tmp_path))
    assert "expected an http:// or https:// URL" in str(caught.value)
    assert "XXXXSECRET" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("https://hooks.example:99999/XXXXSECRET", "with a port from 1 to 65535"),
        ("https://hooks.example:abc/XXXXSECRET", "with a port from 1 to 65535"),
        ("https://hooks.example:0/XXXXSECRET", "with a port from 1 to 65535"),
        ("https:///XXXXSECRET", "naming a host"),
    ],
)
def test_a_webhook_url_that_cannot_be_reached_is_refused_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, said: str
) -> None:
    """A port out of range passed and then broke every alert delivery run (ValueError)."""
    for variable in ("ACCROCHAGE_ALERTS__WEBHOOKS", "ACCROCHAGE_ALERTS__ALERTMANAGER"):
        value = f'["{url}"]' if variable.endswith("WEBHOOKS") else url
        monkeypatch.setenv(variable, value)
        with pytest.raises(ConfigError) as caught:
            load_settings(write_config(tmp_path))
        assert said in str(caught.value) and "alerts." in str(caught.value)
        assert "XXXXSECRET" not in str(caught.value)
        monkeypatch.delenv(variable)
    monkeypatch.setenv("ACCROCHAGE_ALERTS__WEBHOOKS", '["https://hooks.example:8443/x"]')
    assert load_settings(write_config(tmp_path)).alerts.webhooks


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("tick", "0.2s", "batching.tick: must be between 1s and 1h"),
        ("tick", "2h", "batching.tick: must be between 1s and 1h"),
        ("max_delay", "0s", "batching.max_delay: must be between 1s and 60d"),
        ("max_delay", "90d", "batching.max_delay: must be between 1s and 60d"),
        ("deadline_margin", "100d", "batching.deadline_margin: must be between 0s and 60d"),
        ("max_delay", "99999999999999999d", "batching.max_delay: expected a duration between"),
        ("tick", "1e9s", "batching.tick: expected a duration such as"),
        ("deadline_margin", "-1d", "batching.deadline_margin: expected a duration such as"),
    ],
)
def test_durations_are_bounded(tmp_path: Path, key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config(tmp_path, batching={key: value}))
    assert message in str(caught.value)
    assert "Value error" not in str(caught.value)


@pytest.mark.parametrize("value", ["0.5s", "2h"])
def test_the_lock_wait_is_bounded(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config(tmp_path, state={"lock_wait": value}))
    assert "state.lock_wait: must be between 1s and 1h" in str(caught.value)


def test_a_huge_number_of_seconds_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACCROCHAGE_KAFKA__SESSION_TIMEOUT", "1" + "0" * 30 + "s")
    with pytest.raises(ConfigError, match=r"kafka\.session_timeout \(from .*\): expected a"):
        load_settings(write_config(tmp_path))


def test_the_bounds_themselves_are_accepted(tmp_path: Path) -> None:
    settings = load_settings(
        write_config(tmp_path, batching={"tick": "1s", "max_delay": "60d", "deadline_margin": "0d"})
    )
    assert settings.batching.tick == timedelta(seconds=1)
    assert settings.batching.max_delay == timedelta(days=60)


def test_refdata_and_certifier_siret(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    settings = load_settings(config)
    assert settings.refdata.rncp is None and settings.refdata.cog is None
    assert settings.refdata.max_age == timedelta(days=30)
    assert all(c.siret is None for c in settings.certifiers)
    text = config.read_text(encoding="utf-8")
    marker = 'key = "pix"\n'
    assert marker in text
    config.write_text(
        text.replace(marker, marker + 'siret = "\\t792 791 329 00016"\n', 1)
        + '\n[refdata]\nrncp = ""\ncog = "/srv/cog"\nmax_age = "10d"\n',
        encoding="utf-8",
    )
    settings = load_settings(config)
    assert settings.certifiers[0].siret == "79279132900016"  # the export's TAB, spaces: dropped
    assert settings.refdata.rncp is None and settings.refdata.cog == Path("/srv/cog")
    config.write_text(text.replace(marker, marker + 'siret = "7927913290001"\n', 1))
    with pytest.raises(ConfigError, match="siret"):
        load_settings(config)


def test_an_xsd_of_another_version_stops_every_command_that_writes(tmp_path: Path) -> None:
    """Every file would fail its check, at every flush, for ever: the command stops first
    (exit 2), with what to change; `doctor` still reports it as a finding."""
    from accrochage.app import build_core

    kit = tmp_path / "kit-1.1.2.xsd"
    kit.write_text(
        '<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema" version="1.1.2"/>\n',
        encoding="utf-8",
    )
    settings = load_settings(write_config(tmp_path, schema={"version": "1.1.5", "xsd": kit}))
    expected = r"declares version 1\.1\.2 but schema\.version is 1\.1\.5"
    with pytest.raises(ConfigError, match=expected):
        build_core(settings)


@pytest.mark.parametrize(("margin", "days"), [("0s", 0), ("12h", 1), ("36h", 2), ("14d", 14)])
def test_a_deadline_margin_counts_whole_days_rounded_up(
    tmp_path: Path, margin: str, days: int
) -> None:
    settings = load_settings(write_config(tmp_path, batching={"deadline_margin": margin}))
    assert settings.batching.margin_days == days


def test_a_variable_is_read_whatever_the_case_of_its_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACCROCHAGE_batching__max_records", "7")
    assert load_settings(write_config(tmp_path)).batching.max_records == 7


def test_a_lower_case_variable_is_checked_as_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`accrochage_api__token` sets the token, so `accrochage_api_token` (one `_`) must not
    be ignored, leaving an API without the token the operator meant to require."""
    monkeypatch.setenv("accrochage_api_token", "x" * 40)
    with pytest.raises(ConfigError, match="accrochage_api_token: not a setting"):
        load_settings(write_config(tmp_path))
    monkeypatch.delenv("accrochage_api_token")
    monkeypatch.setenv("accrochage_api__token", "short")
    with pytest.raises(ConfigError, match=r"api\.token \(from accrochage_api__token\)"):
        load_settings(write_config(tmp_path))


def test_settings_are_read_only_and_alert_urls_never_shown(tmp_path: Path) -> None:
    """One reading of the configuration builds everything: nothing may change it afterwards
    (a certifier appended past the unique-key check); a webhook's URL is a credential and
    stays out of every representation of the settings."""
    config = write_config(tmp_path)
    with config.open("a", encoding="utf-8") as handle:
        handle.write(
            '\n[alerts]\nwebhooks = ["https://hooks.slack.invalid/services/SECRETxyz"]\n'
            'alertmanager = "http://am:9093/SECRETabc"\n'
        )
    settings = load_settings(config)
    with pytest.raises(ValidationError, match="frozen"):
        settings.api.bind = "0.0.0.0:80"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="frozen"):
        settings.paths = settings.paths  # type: ignore[misc]
    with pytest.raises(AttributeError):
        settings.certifiers.append(settings.certifiers[0])  # type: ignore[attr-defined]
    for shown in (repr(settings), str(settings), settings.model_dump_json()):
        assert "SECRET" not in shown
    assert [u.get_secret_value() for u in settings.alerts.webhooks] == [
        "https://hooks.slack.invalid/services/SECRETxyz"
    ]


def test_a_misspelt_scoped_token_is_said_in_the_form_written(tmp_path: Path) -> None:
    """An ingest token is a string or a table: a table with a misspelt key was answered with
    the string form's failure too, in pydantic's inner types ("function-after[...]")."""
    config = write_config(tmp_path, api={"ingest_tokens": [{"tokn": "p" * 40}]})
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    said = str(caught.value)
    assert "3 wrong or missing setting(s)" in said
    assert "api.ingest_tokens.0.tokn: unknown setting" in said
    assert "api.ingest_tokens.0.token: Field required" in said
    assert "function-after" not in said and ".scoped." not in said
    config = write_config(tmp_path, api={"ingest_tokens": ["short"]})
    with pytest.raises(ConfigError, match=r"api.ingest_tokens.0: a token must hold at least 32"):
        load_settings(config)


def test_a_check_across_sections_names_its_keys_not_an_empty_place(tmp_path: Path) -> None:
    """It read `  - : certifier keys must be unique`, and a scoped token's unknown certifier
    was `api.ingest_tokens[0]` where every other message counts tokens from #1."""
    config = write_config(tmp_path)
    text = config.read_text(encoding="utf-8")
    twice = text + '\n[[certifiers]]\nkey = "school"\nid_client = "12ABC345"\n'
    config.write_text(twice + 'id_contrat = "X"\ncertifications = ["RS1"]\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert "\n  - certifiers: keys must be unique; repeated: school" in str(caught.value)
    assert "  - :" not in str(caught.value)
    scoped = {"token": "s" * 40, "certifiers": ["nobody"]}
    config = write_config(tmp_path, api={"token": TOKEN, "ingest_tokens": [scoped]})
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert "\n  - api.ingest_tokens #1 certifiers names 'nobody'" in str(caught.value)


def test_a_list_written_as_one_value_says_how_to_write_a_list(tmp_path: Path) -> None:
    """`certifications = "RS1"` and `[certifiers]` with single brackets were refused as
    "Input should be a valid tuple", a word of Python's that TOML does not have."""
    config = write_config(tmp_path)
    text = config.read_text(encoding="utf-8")
    one = 'certifications = ["RNCP35726"]'
    config.write_text(text.replace(one, 'certifications = "RNCP35726"'), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    said = str(caught.value)
    assert "certifiers.1.certifications: expected a list in brackets" in said, said
    assert "tuple" not in said
    school = text.index('[[certifiers]]\nkey = "school"')
    single = text[:school] + text[text.index(one) + len(one) :]
    config.write_text(single.replace("[[certifiers]]", "[certifiers]"), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    said = str(caught.value)
    assert "certifiers: expected one [[certifiers]] section (double brackets)" in said, said


def test_a_refused_item_is_one_fault_not_also_an_empty_list(tmp_path: Path) -> None:
    """`certifications = ["rs5875"]` was two faults: the code's pattern, and "Tuple should
    have at least 1 item after validation, not 0" for a list that holds one."""
    config = write_config(tmp_path)
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace('["RNCP35726"]', '["rncp35726"]'), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    said = str(caught.value)
    assert "1 wrong or missing setting(s)" in said and "certifiers.1.certifications.0" in said
    assert "at least 1 item" not in said
    config.write_text(text.replace('["RNCP35726"]', "[]"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"certifiers\.1\.certifications: .*at least 1 item"):
        load_settings(config)


@pytest.mark.parametrize("variable", ["ACCROCHAGE_API__TOKEN", "accrochage_api__token"])
@pytest.mark.parametrize("empty", ["", "  "])
def test_an_empty_token_variable_is_refused_not_taken_for_no_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, empty: str
) -> None:
    """An `EnvironmentFile` template or a compose `${TOKEN}` left unset replaced the file's
    token with none: on a loopback bind, the API answered anyone."""
    config = write_config(tmp_path, api={"token": "f" * 40})
    monkeypatch.setenv(variable, empty)
    with pytest.raises(ConfigError) as refused:
        load_settings(config)
    said = str(refused.value)
    assert said.startswith(f"{variable}: set but empty"), said
    assert "unset it to keep the file's" in said and "f" * 40 not in said
    monkeypatch.delenv(variable)
    assert load_settings(config).api.token.get_secret_value() == "f" * 40
    monkeypatch.setenv("ACCROCHAGE_SCHEMA__XSD", "")
    assert load_settings(config).schema_.xsd is None, "other empty variables keep their meaning"


def test_a_wrong_setting_in_the_file_names_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An operator with a long file was told `certifiers.1.id_contrat` and counted the
    `[[certifiers]]` by hand: each fault names its line, or the table a missing key goes in;
    never a line for a value the environment gave."""
    config = tmp_path / "accrochage.toml"
    config.write_text(
        "\n".join(
            [
                "# accrochage",  # 1
                "[emitter]",  # 2
                'nature = "CERTIFICATEUR"',  # 3: id_client missing
                "",
                "[[certifiers]]",  # 5
                'key = "pix"',
                'id_client = "03VML243"',
                'id_contrat = "MCFCER000209"',
                'certifications = ["RS5875"]',
                "",
                "[[certifiers]]",  # 11
                'key = "school"',
                'id_client = "12ABC345"',
                "id_contrat = 12",  # 14
                'certifications = ["RNCP35726"]',
                '  note = """',  # 16: a multi-line string holding what looks like keys
                "max_records = 3",
                "[batching]",
                '"""',
                "[batching]",  # 20
                'tick = "9s"',
                "max_records = 'many'",  # 22
                "",
                "[[api.ingest_tokens]]",  # 24
                f'token = "{"a" * 40}"',
                "[[api.ingest_tokens]]",  # 26
                f'tokn = "{"b" * 40}"',  # 27
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("ACCROCHAGE_STATE__LOCK_WAIT", "0.1s")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    said = str(caught.value).splitlines()

    def line_for(key: str) -> str:
        (found,) = [line for line in said if line.startswith(f"  - {key}")]
        return found

    assert line_for("emitter.id_client:").endswith("(in the table at line 2)")
    assert line_for("certifiers.1.id_contrat:").endswith("(line 14)")
    assert line_for("certifiers.1.note:").endswith("(line 16)")
    assert line_for("batching.max_records:").endswith("(line 22)")
    assert line_for("api.ingest_tokens.1.tokn:").endswith("(line 27)")
    assert line_for("api.ingest_tokens.1.token:").endswith("(in the table at line 26)")
    from_variable = line_for("state.lock_wait (from ACCROCHAGE_STATE__LOCK_WAIT):")
    assert "line" not in from_variable, from_variable
