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
from aiokafka import AIOKafkaConsumer

from accrochage.runtimes.kafka import sole as sole_module
from accrochage.runtimes.kafka.seeking import SEEK_SECONDS
from accrochage.runtimes.kafka.sole import (
    CHECK_SECONDS,
    DESCRIBE_SECONDS,
    MAX_GRACE,
    TOGETHER_SECONDS,
    GroupShared,
    Member,
    SoleMember,
    eldest,
    grace_for,
    group_members,
    member_client_id,
    seniority,
)
from tests.kafka.conftest import KafkaEndpoint
from tests.kafka.workers import (
    Worker,
    WorkerConfig,
    check_offsets,
    free_port,
    progress,
    send,
    unique,
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
    monkeypatch.setattr(sole_module, "group_members", described(hosts("/a", "/b")))
    await sole()  # no stop: an error said
    assert "'group' (kafka.group) has 2 members" in caplog.text


def hosts(*names: str) -> list[Member]:
    """Members with these hosts, none of them a worker's client id."""
    return [Member(f"faust-{i}", name) for i, name in enumerate(names)]


def described(*answers: list[Member]) -> Callable[..., Awaitable[list[Member]]]:
    """`group_members` answering each of `answers` in turn, then the last one for ever."""
    left = list(answers)

    async def members(*_: object, **__: object) -> list[Member]:
        return left.pop(0) if len(left) > 1 else left[0]

    return members


async def test_a_member_killed_while_it_joined_is_given_its_session_to_leave(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker killed as it joined is a member of the next generation until its session
    ends: the worker started after it waits for that, it does not stop."""
    two, one = hosts("/10.0.0.1", "/10.0.0.1"), hosts("/10.0.0.1")
    monkeypatch.setattr(sole_module, "POLL_SECONDS", 0.01)
    monkeypatch.setattr(sole_module, "group_members", described(two, two, one))
    await SoleMember("broker", "group", grace=5.0)()

    monkeypatch.setattr(sole_module, "group_members", described(two))
    with pytest.raises(GroupShared, match="has 2 members"):
        await SoleMember("broker", "group", grace=0.1)()


async def test_a_worker_alone_first_reads_on_beside_a_newcomer(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sole_module, "group_members", described(hosts("/a"), hosts("/a", "/b")))
    sole = SoleMember("broker", "group", grace=5.0)
    await sole()
    await sole()  # no wait, no stop: an error said
    assert "'group' (kafka.group) has 2 members" in caplog.text


def test_the_grace_is_the_session_within_the_seek_s_bound() -> None:
    assert grace_for(3.0) == 5.0
    assert grace_for(1800.0) == MAX_GRACE
    # The whole check, its last look at the group included (bounded by what is left), ends
    # within CHECK_SECONDS; the seek's own work follows within SEEK_SECONDS.
    assert CHECK_SECONDS + DESCRIBE_SECONDS <= SEEK_SECONDS


async def test_the_whole_check_ends_within_its_bound_whatever_the_grace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The eldest waited the grace, then the grace again and a margin, each look at the
    group up to DESCRIBE_SECONDS past its wait: past the seek's bound, the worker stopped
    saying the broker did not answer. One bound now holds the whole check: counted in looks
    at the group (never timed), 0.3 s of 0.01 s polls where the grace alone is 100 s."""
    elder, younger = member_client_id(500, 1_700_000_000.0), member_client_id(0, 1_700_000_001.0)
    both = [Member(elder, "/10.0.0.1"), Member(younger, "/10.0.0.2")]
    looks = [0]

    async def members(*_: object, **__: object) -> list[Member]:
        looks[0] += 1
        return both

    monkeypatch.setattr(sole_module, "POLL_SECONDS", 0.01)
    monkeypatch.setattr(sole_module, "CHECK_SECONDS", 0.3)
    monkeypatch.setattr(sole_module, "group_members", members)
    with pytest.raises(GroupShared, match="has 2 members"):
        await SoleMember("broker", "group", 100.0, elder)()
    assert 1 < looks[0] <= 31


def test_workers_started_together_are_ordered_by_what_their_state_read_then_their_start() -> None:
    read_more_later = member_client_id(1_200, 1_700_000_030.5)
    read_less_sooner = member_client_id(300, 1_700_000_000.0)
    fresh_sooner = member_client_id(0, 1_700_000_000.0)
    fresh_later = member_client_id(0, 1_700_000_000.001)
    order = sorted([fresh_later, read_less_sooner, fresh_sooner, read_more_later], key=seniority)
    assert order == [read_more_later, read_less_sooner, fresh_sooner, fresh_later]
    assert seniority(read_more_later)[:2] == (-1_200, 1_700_000_030_500)  # type: ignore[index]
    assert member_client_id(0, 1.0) != member_client_id(0, 1.0)  # the tag tells them apart

    def members(*ids: str) -> list[Member]:
        return [Member(client_id, "/10.0.0.1") for client_id in ids]

    assert eldest(read_more_later, members(read_more_later, fresh_sooner, read_less_sooner))
    assert not eldest(fresh_sooner, members(read_more_later, fresh_sooner))
    assert eldest(fresh_sooner, members(fresh_later, fresh_sooner))
    # Another consumer, or a worker of an older version: no worker claims to come first.
    assert not eldest(read_more_later, members(read_more_later, "faust-1.0"))
    assert not eldest(read_more_later, members(fresh_sooner))  # not a member itself
    assert not eldest(None, members(fresh_sooner))
    assert seniority("accrochage-worker-12-abc-0011aabb") is None
    # A worker started long before may be reading: it never leaves, so no one waits for it.
    reading = member_client_id(0, 1_700_000_000.0 - TOGETHER_SECONDS - 1)
    assert not eldest(read_more_later, members(read_more_later, reading))


async def test_of_workers_started_together_the_eldest_waits_for_the_others_and_reads_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Both at their first assignment, each found the other and both stopped. The eldest
    now waits past the grace, for the others to stop; the others stop, as before."""
    elder, younger = member_client_id(500, 1_700_000_000.0), member_client_id(0, 1_699_999_990.0)
    both = [Member(elder, "/10.0.0.1"), Member(younger, "/10.0.0.2")]
    left = [Member(elder, "/10.0.0.1")]
    monkeypatch.setattr(sole_module, "POLL_SECONDS", 0.01)
    grace = 0.2
    polls_past_grace = int(grace / 0.01) + 30  # the younger left well after the grace
    monkeypatch.setattr(sole_module, "group_members", described(*[both] * polls_past_grace, left))
    await SoleMember("broker", "group", grace, elder)()
    said = "1 other worker(s) (hosts /10.0.0.2) started with this worker joined the consumer group"
    assert f"{said} 'group'" in caplog.text and "so it waits for them to stop" in caplog.text

    monkeypatch.setattr(sole_module, "group_members", described(both))
    with pytest.raises(GroupShared, match="has 2 members"):
        await SoleMember("broker", "group", grace, younger)()


async def test_the_eldest_stops_too_when_the_others_stay(monkeypatch: pytest.MonkeyPatch) -> None:
    """A younger member that does not leave (a worker already reading, which only logs) is
    not waited for beyond the eldest's bound: the eldest stops, as a newcomer did before."""
    elder, younger = member_client_id(500, 1.0), member_client_id(0, 2.0)
    both = [Member(elder, "/10.0.0.1"), Member(younger, "/10.0.0.2")]
    monkeypatch.setattr(sole_module, "POLL_SECONDS", 0.01)
    monkeypatch.setattr(sole_module, "ELDEST_MARGIN", 0.05)
    monkeypatch.setattr(sole_module, "group_members", described(both))
    with pytest.raises(GroupShared, match="has 2 members"):
        await SoleMember("broker", "group", 0.05, elder)()


@pytest.mark.kafka
async def test_the_broker_names_each_member_and_the_eldest_keeps_the_group(
    kafka_broker: KafkaEndpoint,
) -> None:
    """Against the broker: two members of one group, each at its first assignment, each
    checking the group with its own client id, as two workers started together do. The
    younger stops (and leaves, as a stopping worker's consumer does); the eldest waits for
    that past its grace, and reads on."""
    topic, group = unique("together"), unique("together-group")
    await kafka_broker.create_topic(topic, 2)
    elder, younger = member_client_id(40, time.time()), member_client_id(0, time.time() - 30)
    consumers = {
        client_id: AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_broker.bootstrap,
            group_id=group,
            client_id=client_id,
            session_timeout_ms=6_000,
            heartbeat_interval_ms=500,
        )
        for client_id in (elder, younger)
    }
    polls = []
    try:
        for consumer in consumers.values():
            await consumer.start()
            polls.append(asyncio.create_task(_poll(consumer)))
        deadline = time.monotonic() + RUN_TIMEOUT
        while {m.client_id for m in await group_members(kafka_broker.bootstrap, group)} != {
            elder,
            younger,
        }:
            assert time.monotonic() < deadline, "the two consumers never were members together"
            await asyncio.sleep(0.2)

        async def younger_stops() -> None:
            with pytest.raises(GroupShared, match="has 2 members"):
                await SoleMember(kafka_broker.bootstrap, group, 1.0, younger)()
            await consumers[younger].stop()

        await asyncio.gather(
            SoleMember(kafka_broker.bootstrap, group, 1.0, elder)(), younger_stops()
        )
        (left,) = await group_members(kafka_broker.bootstrap, group)
        assert left.client_id == elder
    finally:
        for poll in polls:
            poll.cancel()
        for consumer in consumers.values():
            await consumer.stop()


async def _poll(consumer: AIOKafkaConsumer) -> None:
    """Keeps the consumer polling, as a worker does, so that it stays in its group."""
    while True:
        await consumer.getmany(timeout_ms=200)


@pytest.mark.kafka
async def test_workers_started_together_leave_one_of_them_reading(
    kafka_broker: KafkaEndpoint, tmp_path: Path, kafka_seed: int, workers: list[Worker]
) -> None:
    """Two workers with states of their own started at the same moment both stopped (each
    found the other at its first assignment). Now one stops having read nothing; the other
    reads everything."""
    why = f"(seed {kafka_seed}; replay with ACCROCHAGE_KAFKA_SEED={kafka_seed})"
    config = write_worker_config(tmp_path / "first", kafka_broker.bootstrap)
    other = another_state(config, tmp_path / "second")
    spec = write_events(
        tmp_path / "events.jsonl", config.settings(), kafka_seed, 300, invalid_ratio=0.0
    )
    pair = [Worker(config, tmp_path / "first.log"), Worker(other, tmp_path / "second.log")]
    workers.extend(pair)
    deadline = time.monotonic() + RUN_TIMEOUT
    while all(worker.alive() for worker in pair):
        assert time.monotonic() < deadline, "both workers read on:\n" + "\n".join(
            worker.tail() for worker in pair
        )
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)  # the other one's stop, had both stopped
    readers = [worker for worker in pair if worker.alive()]
    assert len(readers) == 1, "both workers stopped:\n" + "\n".join(w.tail() for w in pair)
    ((reader,), (stopped,)) = readers, [worker for worker in pair if not worker.alive()]
    assert stopped.proc.returncode == 1, stopped.tail()
    assert "this worker stops before it reads anything" in stopped.text(), stopped.tail()
    assert progress(stopped.config).read == 0, f"the stopped worker read the topic {why}"
    assert not released_files(stopped.config.outbox), "the stopped worker wrote files"
    sent = await asyncio.to_thread(send, reader.config, spec.path, tmp_path / "send.log")
    await asyncio.to_thread(
        wait_until_done, reader.config, sent, RUN_TIMEOUT, alive=reader.alive, why=why
    )
    assert reader.stop() == 0, reader.tail()
    await check_offsets(reader.config, sent, why)
    assert progress(reader.config).records == len(spec.valid), why
