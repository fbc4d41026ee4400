"""A second worker with a state of its own in the first one's consumer group (another machine,
a deployment scaled to two replicas): it was given half the partitions, read them from its own
state's offsets (from their start) and wrote files of the records the first worker had written
already, nothing said. It now stops before it reads anything, saying why; the first goes on
and gets its partitions back."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from accrochage.runtimes.kafka import sole as sole_module
from accrochage.runtimes.kafka.seeking import SEEK_SECONDS
from accrochage.runtimes.kafka.sole import (
    DESCRIBE_SECONDS,
    MAX_GRACE,
    GroupShared,
    SoleMember,
    grace_for,
)
from tests.kafka.conftest import KafkaEndpoint
from tests.kafka.workers import (
    Worker,
    WorkerConfig,
    check_offsets,
    free_port,
    progress,
    send,
    wait_until_done,
    write_events,
    write_worker_config,
)
from tests.support.crash import released_files

RUN_TIMEOUT = 120.0


def another_state(config: WorkerConfig, folder: Path) -> WorkerConfig:
    """The same topic and group, another state, outbox and API port."""
    folder.mkdir(parents=True)
    other = dataclasses.replace(
        config, folder=folder, path=folder / "accrochage.toml", bind=f"127.0.0.1:{free_port()}"
    )
    text = config.path.read_text(encoding="utf-8")
    for old, new in (
        (str(config.state), str(other.state)),
        (str(config.outbox), str(other.outbox)),
        (config.bind, other.bind),
    ):
        assert old in text, old
        text = text.replace(old, new)
    other.path.write_text(text, encoding="utf-8")
    return other


@pytest.mark.kafka
async def test_a_second_worker_with_its_own_state_in_the_group_stops_and_reads_nothing(
    kafka_broker: KafkaEndpoint, tmp_path: Path, kafka_seed: int, workers: list[Worker]
) -> None:
    why = f"(seed {kafka_seed}; replay with ACCROCHAGE_KAFKA_SEED={kafka_seed})"
    config = write_worker_config(tmp_path / "first", kafka_broker.bootstrap)
    other = another_state(config, tmp_path / "second")
    spec = write_events(
        tmp_path / "events.jsonl", config.settings(), kafka_seed, 300, invalid_ratio=0.0
    )
    first = Worker(config, tmp_path / "first.log")
    workers.append(first)
    await asyncio.to_thread(first.wait_for_log, "Worker ready", RUN_TIMEOUT)
    sent = await asyncio.to_thread(send, config, spec.path, tmp_path / "send.log")
    await asyncio.to_thread(wait_until_done, config, sent, RUN_TIMEOUT, alive=first.alive, why=why)

    second = Worker(other, tmp_path / "second.log")
    workers.append(second)
    deadline = time.monotonic() + RUN_TIMEOUT
    while second.alive() and progress(other).read == 0:
        assert time.monotonic() < deadline, (
            f"the second worker neither stopped nor read:\n{second.tail()}"
        )
        await asyncio.sleep(0.2)
    assert progress(other).read == 0, f"the second worker read the topic {why}:\n{second.tail()}"
    await asyncio.to_thread(second.proc.wait, RUN_TIMEOUT)
    assert second.proc.returncode == 1, second.tail()
    said = second.text()
    assert f"GroupShared: the consumer group {config.group!r} (kafka.group) has 2 members" in said
    assert "this worker stops before it reads anything" in said, second.tail()
    assert not released_files(other.outbox), "the second worker wrote files"
    assert first.alive(), first.tail()
    await asyncio.to_thread(
        first.wait_for_log, f"{config.group!r} (kafka.group) has 2 members", RUN_TIMEOUT
    )

    # The first worker holds every partition again: the file sent again (replays, which
    # change nothing) is read there whole.
    sent += await asyncio.to_thread(send, config, spec.path, tmp_path / "send-2.log")
    await asyncio.to_thread(wait_until_done, config, sent, RUN_TIMEOUT, alive=first.alive, why=why)
    assert first.stop() == 0, first.tail()
    await check_offsets(config, sent, why)
    assert progress(config).records == len(spec.valid), why


async def test_the_group_is_not_checked_when_the_broker_does_not_say(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A broker that does not answer is no reason to stop: the worker reads on, as before;
    reading since, it is no newcomer when it learns of another member later (it stopped,
    and the newcomer read on)."""
    sole = SoleMember("127.0.0.1:1", "group")
    await sole()  # nothing listens there: logged, not raised
    monkeypatch.setattr(sole_module, "group_hosts", described(["/a", "/b"]))
    await sole()  # no stop: an error said
    assert "'group' (kafka.group) has 2 members" in caplog.text


def described(*answers: list[str]) -> Callable[..., Awaitable[list[str]]]:
    """`group_hosts` answering each of `answers` in turn, then the last one for ever."""
    left = list(answers)

    async def hosts(*_: object, **__: object) -> list[str]:
        return left.pop(0) if len(left) > 1 else left[0]

    return hosts


async def test_a_member_killed_while_it_joined_is_given_its_session_to_leave(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker killed as it joined is a member of the next generation until its session
    ends: the worker started after it waits for that, it does not stop."""
    two, one = ["/10.0.0.1", "/10.0.0.1"], ["/10.0.0.1"]
    monkeypatch.setattr(sole_module, "POLL_SECONDS", 0.01)
    monkeypatch.setattr(sole_module, "group_hosts", described(two, two, one))
    await SoleMember("broker", "group", grace=5.0)()

    monkeypatch.setattr(sole_module, "group_hosts", described(two))
    with pytest.raises(GroupShared, match="has 2 members"):
        await SoleMember("broker", "group", grace=0.1)()


async def test_a_worker_alone_first_reads_on_beside_a_newcomer(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sole_module, "group_hosts", described(["/a"], ["/a", "/b"]))
    sole = SoleMember("broker", "group", grace=5.0)
    await sole()
    await sole()  # no wait, no stop: an error said
    assert "'group' (kafka.group) has 2 members" in caplog.text


def test_the_grace_is_the_session_within_the_seek_s_bound() -> None:
    assert grace_for(3.0) == 5.0
    assert grace_for(1800.0) == MAX_GRACE < SEEK_SECONDS - DESCRIBE_SECONDS
