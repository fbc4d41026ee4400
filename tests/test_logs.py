"""`--log-format json` on `run` and `worker`: one JSON object per line, the same message as
the text format and nothing more (no field of the log call's arguments beyond the message)."""

from __future__ import annotations

import json
import logging
import pickle
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from accrochage.cli import main
from accrochage.commands.logs import Repeated, setup_logging
from accrochage.streams.child_logs import adopt_log_setup, parent_log_setup


@pytest.fixture()
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines(restore_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("INFO", "json")
    log = logging.getLogger("accrochage.test")
    log.info("wrote %s (%d passages)", "file.xml", 3, extra={"holder": "Haba"})
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("batch %s failed", "b-1")
    log.debug("not shown")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(x["level"], x["logger"], x["message"]) for x in lines] == [
        ("INFO", "accrochage.test", "wrote file.xml (3 passages)"),
        ("ERROR", "accrochage.test", "batch b-1 failed"),
    ]
    assert set(lines[0]) == {"at", "level", "logger", "message", "pid"}
    assert "ValueError: boom" in lines[1]["exception"]
    assert "Haba" not in json.dumps(lines)  # extra fields are never copied
    assert lines[0]["at"].endswith(("+01:00", "+02:00"))


def test_text_stays_the_default(restore_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("INFO")
    logging.getLogger("accrochage.test").info("hello")
    (line,) = capsys.readouterr().err.splitlines()
    assert line.endswith("INFO accrochage.test hello")


@pytest.mark.parametrize("command", ["run", "worker"])
def test_run_and_worker_take_the_option(command: str) -> None:
    shown = CliRunner().invoke(main, [command, "--help"])
    assert shown.exit_code == 0, shown.output
    assert "--log-format [text|json]" in shown.output


def test_the_writer_process_gets_the_same_format(restore_logging: None) -> None:
    """The Kafka writer process (forkserver) is handed its parent's formatter, pickled."""
    setup_logging("WARNING", "json")
    formatter, level = parent_log_setup()
    assert formatter is not None and level == logging.WARNING
    again = pickle.loads(pickle.dumps(formatter))
    record = logging.LogRecord("accrochage.writer", logging.ERROR, __file__, 1, "x %d", (1,), None)
    assert json.loads(again.format(record))["message"] == "x 1"


def test_a_kafka_client_repeating_itself_is_said_once_a_minute() -> None:
    """While the broker was down, aiokafka logged about 100 error lines a second."""
    now = [0.0]
    repeated = Repeated(every=60.0, clock=lambda: now[0])

    def passed(name: str, level: int, msg: str, *args: object) -> list[str]:
        record = logging.LogRecord(name, level, __file__, 1, msg, args, None)
        return [record.getMessage()] if repeated.filter(record) else []

    said: list[str] = []
    for n in range(300):
        now[0] = n * 0.01
        said += passed("aiokafka.conn", logging.ERROR, "Unable connect to node with id %s", n)
        said += passed("accrochage.kafka", logging.ERROR, "a line of ours %s", n)
        said += passed("aiokafka.consumer", logging.INFO, "Joined group %s", n)
    ours = [s for s in said if s.startswith("a line of ours")]
    infos = [s for s in said if s.startswith("Joined group")]
    theirs = [s for s in said if s.startswith("Unable connect")]
    assert len(ours) == 300 and len(infos) == 300, "only a Kafka client's warnings are held"
    assert theirs == ["Unable connect to node with id 0"]
    now[0] = 61.0
    (again,) = passed("aiokafka.conn", logging.ERROR, "Unable connect to node with id %s", 7)
    assert again == "Unable connect to node with id 7 [299 more like it in the last 60 s]"


NIR = "1 84 12 76 451 089 46"


def test_at_debug_no_library_logs_a_message_it_sends(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--log-level DEBUG` made aiokafka's producer log every message it sent, key and value:
    a rejected event's envelope, the holder's names, birth data and NIR in it. The project's
    own debug lines stay; a library's start at INFO."""
    from aiokafka.producer import producer

    setup_logging("DEBUG")
    producer.log.debug("Sending (key=%s value=%s) to %s", b"k", f'{{"nir": "{NIR}"}}', "tp")
    logging.getLogger("faust.transport").debug("received %s", NIR)
    logging.getLogger("accrochage.test").debug("group of %d stored", 3)
    producer.log.info("producer started")
    said = capsys.readouterr().err
    assert NIR not in said
    assert "group of 3 stored" in said
    assert "producer started" in said


def test_a_child_process_keeps_library_debug_lines_out_too(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging("DEBUG")
    logs = parent_log_setup()
    logging.getLogger().handlers.clear()
    adopt_log_setup(logs)
    logging.getLogger("aiokafka.consumer").debug("fetched %s", NIR)
    logging.getLogger("accrochage.writer").debug("stored %d", 2)
    said = capsys.readouterr().err
    assert NIR not in said
    assert "stored 2" in said


def test_the_kafka_consumer_logs_under_the_project_name() -> None:
    """Its class is made at run time by `type`: mode named its logger after the module of
    the frame that made it, ABCMeta's, and the worker's log said `INFO abc [^--Bound...`."""
    from accrochage.runtimes.kafka.seeking import seeking_transport

    transport = seeking_transport(lambda topic: {})
    assert transport.Consumer.logger.name == "accrochage.runtimes.kafka.seeking"
    assert transport.__module__ == "accrochage.runtimes.kafka.seeking"
