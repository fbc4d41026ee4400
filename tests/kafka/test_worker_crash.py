"""`accrochage worker` killed, its broker restarted, its standby taking over: no loss, no duplicate.

DESIGN.md, "No loss, no duplicate": after a crash at any instant (kill -9), every valid event
ends up in exactly one released file and every invalid one in the rejected records; the offsets
stored in SQLite say exactly how far each partition was read.

- kill -9 of the worker at 12 random points of a 50,000-event run (events produced while it
  runs), restarted each time. Each point is one the worker reaches, never a delay: a random
  share of the events left read, or a start-up stage. A slow machine makes the same kills,
  each while work remains; time only bounds the waits (safety nets of minutes);
- the broker restarted mid-run: the same worker process recovers on its own;
- two workers on one state: the second waits as a standby and takes over when the first is
  killed mid-run.

The schedules are random: the seed is printed and named in every assertion message; replay a
failure with ACCROCHAGE_KAFKA_SEED=<seed>.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from accrochage.sinks.profiles import PROFILES
from tests.kafka.conftest import KafkaEndpoint
from tests.kafka.test_lag import committed
from tests.kafka.workers import (
    PARTITIONS,
    Input,
    Worker,
    WorkerConfig,
    check_corrections,
    check_final_state,
    check_offsets,
    check_rejected,
    events_read,
    progress,
    read_outbox,
    read_topic,
    send,
    send_async,
    stored_offsets,
    wait_until_done,
    write_events,
    write_worker_config,
)
from tests.support.kafka_broker import KafkaBroker, create_topic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

START_TIMEOUT = 180.0
"""A (re)started worker is ready within this: start-up, then the dead member's session (3 s).
A few seconds on an idle machine: a safety net, to fail rather than hang."""
FINISH_TIMEOUT = 300.0
SEND_TIMEOUT = 300.0

CRASH_EVENTS = 50_000
CRASH_KILLS = 12
"""kill -9s of the kill test, every one while work remains."""
STARTUP_KILLS = 0.25
"""The share of them in start-up; the others once the worker read its share of the events."""
STARTUP_STAGES = (
    "lock taken",  # then: topics checked, state opened, writer process started
    "[^Worker]: Starting...",  # faust starting its services
    "joining group",  # joining the group, waiting for the dead member's session
    "at stored offset",  # seeking the offsets stored in the state
)
"""Where in start-up a worker is killed: right after this line in its log (or its lock)."""
POINT_TIMEOUT = 300.0
"""A ready worker reads its share of the events (at most half those left) within this: under a
second on an idle machine; a safety net, to fail rather than hang."""
REMNANTS_GRACE = 30.0
"""A killed worker's writer ends within this (a fraction of a second): a safety net."""
KILLING_TIMEOUT = 1200.0
"""All the kills, made within this (about a minute on an idle machine): a safety net."""
POLL = 0.02
SIGTERMS = 5


def _why(seed: int) -> str:
    return f"(seed {seed}; replay with ACCROCHAGE_KAFKA_SEED={seed})"


def _events(config: WorkerConfig, path: Path, seed: int, count: int) -> Input:
    return write_events(
        path,
        config.settings(),
        seed,
        count,
        invalid_ratio=0.02,
        duplicates=count // 100,
        corrections=count // 100,
        not_json=True,
    )


def _create_topics(bootstrap: str, config: WorkerConfig) -> None:
    """`accrochage send` needs the topic; the worker would create it too."""

    async def create() -> None:
        await create_topic(bootstrap, config.topic, PARTITIONS)
        await create_topic(bootstrap, config.rejected_topic, PARTITIONS)

    asyncio.run(create())


def _check_everything(
    config: WorkerConfig, spec: Input, produced: int, official_xsd: Path, why: str
) -> None:
    """What must hold after the last worker stopped: files, state, offsets, rejected topic."""
    began = time.monotonic()
    outbox = read_outbox(config.outbox, [PROFILES["1.1.2"].bundled_xsd, official_xsd], why)
    check_final_state(config, spec, outbox, why)
    ways = check_corrections(config, spec, outbox, why)
    asyncio.run(check_offsets(config, produced, why))
    messages = asyncio.run(read_topic(config.bootstrap, config.topic))
    assert len(messages) == produced, why
    rejected = asyncio.run(read_topic(config.bootstrap, config.rejected_topic))
    # At least once on the rejected topic: a crash between publishing and forgetting repeats.
    check_rejected(messages, rejected, config, spec, exactly_once=False, why=why)
    print(
        f"checked {len(outbox.holder)} released records in {len(outbox.files)} files, "
        f"{len(rejected)} rejected envelopes for {spec.rejected_lines} rejected messages, "
        f"corrections {ways}, in {time.monotonic() - began:.1f}s"
    )


def _wait_for(what: str, reached: Callable[[], bool], worker: Worker, timeout: float) -> None:
    """Poll until `reached()`; fail if the worker dies first, or after `timeout` (a safety net)."""
    deadline = time.monotonic() + timeout
    while not reached():
        assert worker.alive(), f"the worker died before {what}:\n{worker.tail()}"
        assert time.monotonic() < deadline, f"not {what} after {timeout:.0f}s:\n{worker.tail()}"
        time.sleep(POLL)


def _stage_reached(config: WorkerConfig, worker: Worker, stage: str) -> bool:
    if stage == "lock taken":  # accrochage.streams.kafka.standby.StateLock writes its pid
        lock = config.state.with_name(config.state.name + ".lock")
        try:
            return lock.read_text(encoding="ascii").strip() == str(worker.pid)
        except OSError:
            return False
    return stage in worker.text()


def _reach_kill_point(
    config: WorkerConfig, worker: Worker, rng: random.Random, start: int, target: int, label: str
) -> str:
    """Wait until `worker` is where it is to be killed (picked with `rng`); say where that is.

    Either a start-up stage or, once ready, `target` events read in all (`start` before it):
    never a delay, so that a slow machine kills at the same points as a fast one. A start-up
    kill also comes at `target` at the latest, so that it cannot take more than its share.
    """

    def at_target() -> bool:
        return events_read(config) >= target

    if rng.random() < STARTUP_KILLS:
        stage = rng.choice(STARTUP_STAGES)
        _wait_for(
            f"{stage!r} ({label})",
            lambda: _stage_reached(config, worker, stage) or at_target(),
            worker,
            START_TIMEOUT,
        )
        return f"in start-up, after {stage!r}"
    worker.wait_for_log("Worker ready", START_TIMEOUT)
    _wait_for(f"{target} events read ({label})", at_target, worker, POINT_TIMEOUT)
    return f"after ready, {target - start} events read"


def _wait_read(
    config: WorkerConfig, at_least: int, worker: Worker, timeout: float, poll: float = 0.1
) -> None:
    deadline = time.monotonic() + timeout
    while progress(config).read < at_least:
        assert worker.alive(), f"the worker died:\n{worker.tail()}"
        assert time.monotonic() < deadline, f"{at_least} events not read after {timeout:.0f}s"
        time.sleep(poll)


def test_kill_9_at_random_points_loses_and_duplicates_nothing(
    kafka_broker: KafkaEndpoint,
    tmp_path: Path,
    kafka_seed: int,
    official_xsd: Path,
    workers: list[Worker],
) -> None:
    began = time.monotonic()
    why = _why(kafka_seed)
    rng = random.Random(kafka_seed)
    config = write_worker_config(tmp_path / "worker", kafka_broker.bootstrap, schema="1.1.2")
    spec = _events(config, tmp_path / "events.jsonl", kafka_seed, CRASH_EVENTS)
    produced = len(spec.lines)
    print(f"{produced} events generated in {time.monotonic() - began:.1f}s")
    _create_topics(kafka_broker.bootstrap, config)
    logs = tmp_path / "logs"
    logs.mkdir()

    # Produced while the worker runs (and dies): `accrochage send`, keys = certifiers.
    sender = send_async(config, spec.path, logs / "send.log")
    schedule: list[str] = []
    kills = 0
    killing = time.monotonic()
    try:
        # Each kill at a point the worker reaches, never after a delay: however slow the
        # machine, every kill is made, and made while work remains. The waits only bound it.
        while kills < CRASH_KILLS:
            assert time.monotonic() - killing < KILLING_TIMEOUT, (
                f"{kills} kills in {KILLING_TIMEOUT:.0f}s {why}\n" + "\n".join(schedule)
            )
            # Nothing writes the state now: the previous worker is dead, and its writer too.
            start = events_read(config)
            # A random share of the events left, split over the kills still to make (the last
            # one leaves at least half of them): the run cannot end before a kill.
            share = (produced - start) / (CRASH_KILLS - kills + 1)
            target = start + max(1, int(rng.uniform(0.1, 1.0) * share))
            worker = Worker(config, logs / f"worker-{kills:02d}.log")
            workers.append(worker)
            where = _reach_kill_point(config, worker, rng, start, target, f"worker #{kills} {why}")
            assert worker.alive(), f"worker #{kills} died on its own {why}:\n{worker.tail()}"
            worker.kill()
            lived = time.monotonic() - worker.started
            remnants = worker.remnants(REMNANTS_GRACE)
            assert not remnants, f"worker #{kills} outlived by {remnants} {why}"
            after_kill = progress(config)
            schedule.append(
                f"  #{kills}: killed {where} ({lived:.1f}s after start), "
                f"{after_kill.read - start} read by it, {after_kill.read} read, "
                f"{after_kill.records} records, {after_kill.pending} pending, "
                f"{after_kill.unwritten} batches unwritten, "
                f"{after_kill.dead_letters} dead letters queued"
            )
            assert not after_kill.done(produced), (
                f"kill #{kills} came after the run ended {why}\n" + "\n".join(schedule)
            )
            kills += 1
        print(f"{kills} kills in {time.monotonic() - killing:.1f}s:\n" + "\n".join(schedule))

        assert sender.wait(SEND_TIMEOUT) == 0, f"accrochage send failed {why}"
        last = Worker(config, logs / "worker-last.log")
        workers.append(last)
        left = produced - progress(config).read
        finishing = wait_until_done(config, produced, FINISH_TIMEOUT, alive=last.alive, why=why)
        last.wait_for_log("Worker ready", START_TIMEOUT)
        print(
            f"the last worker read the {left} events left and wrote everything in "
            f"{finishing:.1f}s, start-up included ({left / finishing:.0f} events/s)"
        )
        assert last.stop() == 0, f"the last worker did not stop cleanly {why}:\n{last.tail()}"
    finally:
        if sender.poll() is None:
            sender.kill()
            sender.wait(30)

    _check_everything(config, spec, produced, official_xsd, why)
    total = time.monotonic() - began
    print(f"kill -9 test: {total:.1f}s {why}")


@pytest.mark.parametrize("how", ["restart", "kill-9"])
def test_broker_restarted_mid_run_the_worker_recovers_on_its_own(
    how: str,
    fresh_broker: KafkaBroker,
    tmp_path: Path,
    kafka_seed: int,
    official_xsd: Path,
    workers: list[Worker],
) -> None:
    began = time.monotonic()
    why = _why(kafka_seed)
    rng = random.Random(kafka_seed)
    config = write_worker_config(tmp_path / "worker", fresh_broker.bootstrap, schema="1.1.2")
    spec = _events(config, tmp_path / "events.jsonl", kafka_seed, 10_000)
    produced = len(spec.lines)
    # Half before the restart, the rest after: the worker must read both.
    cut = rng.randrange(produced // 3, 2 * produced // 3)
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text("".join(line + "\n" for line in spec.lines[:cut]), encoding="utf-8")
    second.write_text("".join(line + "\n" for line in spec.lines[cut:]), encoding="utf-8")

    worker = Worker(config, tmp_path / "worker.log")
    workers.append(worker)
    worker.wait_for_log("Worker ready", START_TIMEOUT)
    assert send(config, first, tmp_path / "send-1.log") == cut, why
    at = rng.randrange(cut // 4, 3 * cut // 4)
    _wait_read(config, at, worker, 120)
    before = progress(config)
    restart_began = time.monotonic()
    if how == "kill-9":
        fresh_broker.kill()
        fresh_broker.start(90)
    else:
        fresh_broker.restart(90)
    restart = time.monotonic() - restart_began
    after = progress(config)
    print(f"broker {how} took {restart:.1f}s, at {before.read} events read ({after.read} after)")
    assert worker.alive(), f"the worker died with the broker {why}:\n{worker.tail()}"
    assert send(config, second, tmp_path / "send-2.log") == produced - cut, why

    finishing = wait_until_done(config, produced, FINISH_TIMEOUT, alive=worker.alive, why=why)
    print(f"finished {finishing:.1f}s after the restart")
    assert worker.stop() == 0, f"the worker did not stop cleanly {why}:\n{worker.tail()}"
    _check_everything(config, spec, produced, official_xsd, why)
    print(f"broker restart test: {time.monotonic() - began:.1f}s {why}")


def test_standby_takes_over_when_the_active_worker_is_killed(
    kafka_broker: KafkaEndpoint,
    tmp_path: Path,
    kafka_seed: int,
    official_xsd: Path,
    workers: list[Worker],
) -> None:
    began = time.monotonic()
    why = _why(kafka_seed)
    rng = random.Random(kafka_seed)
    config = write_worker_config(tmp_path / "worker", kafka_broker.bootstrap, schema="1.1.2")
    spec = _events(config, tmp_path / "events.jsonl", kafka_seed, 10_000)
    produced = len(spec.lines)

    active = Worker(config, tmp_path / "active.log")
    workers.append(active)
    active.wait_for_log("Worker ready", START_TIMEOUT)
    standby = Worker(config, tmp_path / "standby.log")
    workers.append(standby)
    standby.wait_for_log("waiting as a standby", START_TIMEOUT)

    sender = send_async(config, spec.path, tmp_path / "send.log")
    try:
        at = rng.randrange(produced // 5, 3 * produced // 5)
        _wait_read(config, at, active, 120)
        assert "Worker ready" not in standby.text(), f"the standby consumes {why}"
        active.kill()
        killed_at = progress(config)
        print(f"active worker killed at {killed_at}")
        standby.wait_for_log("taking over", 30)
        assert sender.wait(120) == 0, f"accrochage send failed {why}"
    finally:
        if sender.poll() is None:
            sender.kill()
            sender.wait(30)
    finishing = wait_until_done(config, produced, FINISH_TIMEOUT, alive=standby.alive, why=why)
    print(f"the standby finished {finishing:.1f}s after the kill")
    assert "resume" in standby.text(), standby.tail()
    assert standby.stop() == 0, f"the standby did not stop cleanly {why}:\n{standby.tail()}"
    _check_everything(config, spec, produced, official_xsd, why)
    print(f"standby test: {time.monotonic() - began:.1f}s {why}")


def test_sigterm_mid_run_stops_cleanly_and_the_next_worker_resumes(
    kafka_broker: KafkaEndpoint,
    tmp_path: Path,
    kafka_seed: int,
    official_xsd: Path,
    workers: list[Worker],
) -> None:
    """A graceful stop (SIGTERM) while busy exits 0, stores or forgets whole groups only."""
    began = time.monotonic()
    why = _why(kafka_seed)
    rng = random.Random(kafka_seed)
    config = write_worker_config(tmp_path / "worker", kafka_broker.bootstrap, schema="1.1.2")
    spec = _events(config, tmp_path / "events.jsonl", kafka_seed, 10_000)
    produced = len(spec.lines)
    _create_topics(kafka_broker.bootstrap, config)
    assert send(config, spec.path, tmp_path / "send.log") == produced, why

    stops: list[str] = []
    for attempt in range(SIGTERMS):
        worker = Worker(config, tmp_path / f"worker-{attempt}.log")
        workers.append(worker)
        worker.wait_for_log("Worker ready", START_TIMEOUT)
        # Stopped at a point of progress, not of time: a worker reads 10,000 events in about
        # a second, so a delay chosen in advance may find the run over.
        before = progress(config).read
        share = (produced - before) // (SIGTERMS - attempt + 1)
        if share > 1:
            _wait_read(config, before + rng.randrange(1, share), worker, 120, poll=0.02)
        seen = progress(config)
        if seen.done(produced):
            assert worker.stop() == 0, f"{why}\n{worker.tail(40)}"
            break
        stopping = time.monotonic()
        code = worker.stop(timeout=30)
        stops.append(
            f"  #{attempt}: SIGTERM at {seen.read} read, {seen.pending} pending: exit {code} "
            f"in {time.monotonic() - stopping:.1f}s"
        )
        assert code == 0, f"SIGTERM while busy: exit {code} {why}\n{worker.tail(40)}"
        assert "cannot store" not in worker.text(), f"{why}\n{worker.tail(40)}"
        # The groups in flight at the stop are stored before it ends, and the broker is told:
        # lag tools read the state's offsets, not those of the last periodic commit.
        stored = stored_offsets(config.state, config.topic)
        assert asyncio.run(committed(config)) == stored, f"{why}\n{worker.tail(40)}"
    print("graceful stops:\n" + "\n".join(stops))
    assert stops, f"the run ended before any stop {why}"

    last = Worker(config, tmp_path / "worker-last.log")
    workers.append(last)
    wait_until_done(config, produced, FINISH_TIMEOUT, alive=last.alive, why=why)
    # The run may have been complete already: a SIGTERM before faust's handlers are in
    # place ends the process by the default action (-15), which says nothing of the worker.
    last.wait_for_log("Worker ready", START_TIMEOUT)
    assert last.stop() == 0, f"the last worker did not stop cleanly {why}:\n{last.tail()}"
    _check_everything(config, spec, produced, official_xsd, why)
    print(f"SIGTERM test: {time.monotonic() - began:.1f}s {why}")
