"""A service reads its configuration once, at its start. Edited since (a certifier added, a
contract renewed), the file said one thing and the service did another with nothing to tell
the operator; broken since, the next restart failed. The service now says both, once per
version of the file, in its log and in `accrochage_configuration_changed`."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import generate_latest

from accrochage.runtimes.config_watch import ConfigWatch
from accrochage.settings import load_settings
from accrochage.settings.drift import Drift
from accrochage.streams.metrics import Metrics
from tests.test_service_process import DEADLINE, _reaped, free_port, wait_healthy
from tests.test_tracker import write_config

CODES = '"RS5875", "RNCP37873"'
ADDED = '"RS5875", "RNCP37873", "RNCP35726"'


def changed_gauge(metrics: Metrics) -> str:
    text = generate_latest(metrics.registry).decode()
    (line,) = [x for x in text.splitlines() if x.startswith("accrochage_configuration_changed ")]
    return line.split()[1]


def test_an_edited_then_broken_then_restored_file_is_told_once_each(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = write_config(tmp_path)
    original = config.read_text(encoding="utf-8")
    metrics = Metrics()
    watch = ConfigWatch(load_settings(config), config, metrics)
    assert watch.look() == Drift() and changed_gauge(metrics) == "0.0"

    with caplog.at_level(logging.INFO, logger="accrochage.service"):
        config.write_text(original.replace(CODES, ADDED), encoding="utf-8")
        assert watch.look() == Drift(sections=("certifiers",))
        assert watch.look() == Drift(sections=("certifiers",)), "the same file: said once"
        assert changed_gauge(metrics) == "1.0"

        config.write_text(original.replace("[emitter]", "[emiter]"), encoding="utf-8")
        broken = watch.look()
        assert broken.error is not None and "emiter" in broken.error
        assert changed_gauge(metrics) == "1.0"

        config.write_text(original, encoding="utf-8")
        assert watch.look() == Drift()
        assert changed_gauge(metrics) == "0.0"
    said = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert len(said) == 3, said
    assert said[0][0] == "WARNING"
    assert (
        f"the configuration file {config} changed since this service started (certifiers)"
        in (said[0][1])
    )
    assert "restart the service to apply it" in said[0][1]
    assert said[1][0] == "ERROR" and "changed and does not load" in said[1][1]
    assert "it would not start again on this one: fix the file" in said[1][1]
    assert said[2] == ("INFO", f"the configuration file {config} says again what this service runs")


def test_a_file_with_several_wrong_settings_is_told_on_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Each wrong setting on a line of its own left them on continuation lines without time,
    level or logger: `grep ERROR` in the service log, or a collector, lost which they were."""
    config = write_config(tmp_path)
    watch = ConfigWatch(load_settings(config), config, Metrics())
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("[emitter]", "[emiter]") + "\n[batchin]\n", encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="accrochage.service"):
        assert watch.look().error is not None
    (said,) = [r.getMessage() for r in caplog.records]
    assert "\n" not in said, said
    assert "emiter" in said and "batchin" in said and "fix the file" in said


def test_a_secret_changed_is_told_without_its_value(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = write_config(tmp_path, api={"token": "a" * 40})
    watch = ConfigWatch(load_settings(config), config, Metrics())
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("a" * 40, "b" * 40), encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="accrochage.service"):
        assert watch.look() == Drift(sections=("api",))
    assert "(api)" in caplog.text and "a" * 40 not in caplog.text and "b" * 40 not in caplog.text


async def test_a_running_service_says_its_configuration_changed(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, api={"bind": f"127.0.0.1:{port}"})
    log_path = tmp_path / "service.log"
    with log_path.open("wb") as log:
        service = subprocess.Popen(
            [sys.executable, "-m", "accrochage", "--config", str(config), "run"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_healthy(base, service)
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace(CODES, ADDED), encoding="utf-8")
        wanted = "changed since this service started (certifiers): restart the service"
        start = time.monotonic()
        while wanted not in log_path.read_text(encoding="utf-8"):
            assert time.monotonic() - start < 2 * DEADLINE, log_path.read_text(encoding="utf-8")
            assert service.poll() is None, log_path.read_text(encoding="utf-8")
            await asyncio.sleep(0.2)
        async with aiohttp.ClientSession() as session, session.get(f"{base}/metrics") as got:
            served = await got.text()
        assert "accrochage_configuration_changed 1.0" in served
    finally:
        _reaped(service)


def test_a_file_edited_while_the_service_started_is_told(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The settings are read first; the watch begins after the state is opened and checked
    whole (`quick_check`: minutes on a large state). A file edited meanwhile was taken as
    the one running: never told, the gauge at 0, until the next edit."""
    config = write_config(tmp_path)
    running = load_settings(config)
    config.write_text(config.read_text(encoding="utf-8").replace(CODES, ADDED), encoding="utf-8")
    metrics = Metrics()
    watch = ConfigWatch(running, config, metrics)
    with caplog.at_level(logging.INFO, logger="accrochage.service"):
        assert watch.look() == Drift(sections=("certifiers",))
    assert changed_gauge(metrics) == "1.0"
    assert "changed since this service started (certifiers)" in caplog.text
