"""One consumer in the worker's group: a worker never shares its topic with another state.

The state is a local SQLite file: a worker stores the partitions it is assigned, resumed from
the offsets *its* state holds. A second worker in the same consumer group with a state of its
own (another machine, another volume, a replica of a deployment) was given half the
partitions, read them from its own stored offsets (none: from their start) and wrote files of
records the first worker had written already, with nothing said: each record went to the CDC
twice, once from each outbox, and each state missed what the other read. A second worker on
the *same* state waits for its lock as a standby and joins no group.

So at each assignment the worker asks the broker who is in its group. A worker that finds
another member there at its first assignment (for longer than a dead member's session:
`grace_for`) joined second: it stops, saying so, before it reads anything. A worker that was
alone first logs an error naming the group and goes on with the partitions it keeps (the
others are resumed from its state once the other one left).

Workers started together both join at their first assignment: each found the other and both
stopped, and under a restart policy they went on stopping each other. Each worker's client id
(`member_client_id`) now says how far its state had read the topic when it started, and when:
among members started within `TOGETHER_SECONDS` of each other, the one whose state had read
the most (then the one started first) waits for the others to stop, and reads on: of workers
started together, a fresh state never takes the topic from the state that read it. A member
started earlier may be reading already, and a reading worker never leaves: no one claims the
topic against it, and the newcomer stops, as before.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from accrochage.errors import AccrochageError

log = logging.getLogger("accrochage.kafka")

DESCRIBE_SECONDS = 10.0
"""The longest the group's description is waited for; past it, the group is not checked that
time (said in the log), as when the broker cannot give the partitions' bounds."""
POLL_SECONDS = 0.5
MAX_GRACE = 30.0
"""The longest another member is given to leave at the first assignment. A session longer
than this may leave a worker killed a moment ago in the group past it: the worker started
then stops, and started again once that session ended, reads on."""
CHECK_SECONDS = 45.0
"""The longest the whole check of a first assignment takes, every wait and every look at
the group included: the seek that runs it is bounded by `seeking.SEEK_SECONDS` (60 s), and
its own work follows."""
ELDEST_MARGIN = 5.0
"""Beyond the others' grace, how long the eldest of workers started together waits for them
to stop and leave the group (within `CHECK_SECONDS`)."""
TOGETHER_SECONDS = 60.0
"""Workers whose starts are this close were started together (a deployment, a restart
policy): only among them does the eldest claim the topic. A worker started earlier may be
reading already, and a reading worker never leaves: the newcomer stops, as before."""
_CLIENT_ID = re.compile(r"accrochage-worker-(\d{1,19})-(\d{13})-([0-9a-f]{8})")


class GroupShared(AccrochageError):
    """Another consumer is a member of the worker's consumer group: it must not read on."""


@dataclass(frozen=True, slots=True)
class Member:
    client_id: str
    host: str


def member_client_id(read: int, started: float) -> str:
    """A worker's client id: how far its state had read the topic at its start (the sum of
    the stored next offsets), its start (ms since the epoch) and a random tag."""
    return f"accrochage-worker-{read}-{round(started * 1000):013d}-{secrets.token_hex(4)}"


def seniority(client_id: str) -> tuple[int, int, str] | None:
    """The order of workers started together, least first: the most read, then the first
    started; None: not a worker's client id (another consumer, an older version)."""
    found = _CLIENT_ID.fullmatch(client_id)
    if found is None:
        return None
    return (-int(found[1]), int(found[2]), found[3])


def eldest(client_id: str | None, members: list[Member]) -> bool:
    """Whether `client_id` comes first among `members`, every one of them a worker's started
    within `TOGETHER_SECONDS` of it."""
    own = seniority(client_id) if client_id is not None else None
    others = [seniority(m.client_id) for m in members if m.client_id != client_id]
    if own is None or len(others) == len(members):  # not a member itself: nothing to claim
        return False
    window = TOGETHER_SECONDS * 1000
    return all(
        other is not None and own < other and abs(other[1] - own[1]) <= window for other in others
    )


async def group_members(
    bootstrap: str, group: str, seconds: float = DESCRIBE_SECONDS
) -> list[Member]:
    """Each member of `group`, as the broker knows them; raises `KafkaError`, `TimeoutError`
    or `OSError` when the broker does not say."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(seconds * 1000))
    try:
        async with asyncio.timeout(seconds):
            await admin.start()
            (response,) = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    (described,) = response.groups  # error_code, group, state, protocol_type, protocol, members
    if described[0]:
        raise KafkaError(f"the broker answered error code {described[0]} for the group")
    # member_id, client_id, client_host, metadata, assignment
    return [Member(str(member[1]), str(member[2])) for member in described[5]]


@dataclass
class SoleMember:
    """Checks, at each assignment, that the worker is its group's only member (see above)."""

    bootstrap: str
    group: str
    grace: float = 0.0
    """How long another member found at the first assignment is given to leave: a worker
    killed a moment ago stays a member until its session ends (`grace_for`)."""
    client_id: str | None = None
    """This worker's (`member_client_id`); None: it never claims to be the eldest."""
    first: bool = True
    """No assignment yet: another member found now joined first. A worker whose first look
    failed (said in the log) reads on, and is no newcomer at the next assignment."""

    async def __call__(self) -> None:
        first, self.first = self.first, False  # a worker reading since is not a newcomer
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CHECK_SECONDS
        members = await self._members(deadline)
        if members is None:
            return
        if first:
            members = await self._until_alone(members, loop.time() + self.grace, deadline)
            if len(members) > 1 and eldest(self.client_id, members):
                log.warning(
                    "%s started with this worker joined the consumer group %r (kafka.group): "
                    "this one's state had read the most of kafka.topic (or it started first), "
                    "so it waits for them to stop",
                    _others(members, self.client_id),
                    self.group,
                )
                until = loop.time() + self.grace + ELDEST_MARGIN
                members = await self._until_alone(members, until, deadline)
        if len(members) <= 1:
            return
        hosts = sorted(m.host for m in members)
        said = (
            f"the consumer group {self.group!r} (kafka.group) has {len(members)} members (hosts "
            f"{', '.join(hosts)}): another worker, with a state of its own, reads kafka.topic"
        )
        if first:
            raise GroupShared(
                f"{said}; this worker stops before it reads anything: two states would each "
                "read part of the topic and write files of the same records. One worker reads "
                "a topic for one state: a second one for failover uses the same state (it "
                "waits as a standby); a worker with a state of its own needs its own "
                "kafka.group and kafka.topic"
            )
        log.error(
            "%s; it took partitions this worker does not read until it leaves (they are "
            "resumed from this state's offsets then): stop that worker",
            said,
        )

    async def _members(self, deadline: float) -> list[Member] | None:
        """The group's members, waited for until `deadline` at most; None: not known."""
        left = deadline - asyncio.get_running_loop().time()
        try:
            return await group_members(
                self.bootstrap, self.group, max(0.1, min(DESCRIBE_SECONDS, left))
            )
        except (KafkaError, TimeoutError, OSError) as exc:
            log.warning("could not read who is in the consumer group (%s): not checked", exc)
            return None

    async def _until_alone(
        self, members: list[Member], until: float, deadline: float
    ) -> list[Member]:
        """The members once the others left, or those left at `until` (or `deadline`, the
        check's bound, if sooner): a member killed while it joined is part of the generation
        that follows, until its session ends."""
        loop = asyncio.get_running_loop()
        end = min(until, deadline)
        while len(members) > 1 and loop.time() + POLL_SECONDS < end:
            await asyncio.sleep(POLL_SECONDS)
            members = await self._members(end) or members
        return members


def _others(members: list[Member], client_id: str | None) -> str:
    others = [m for m in members if m.client_id != client_id]
    return f"{len(others)} other worker(s) (hosts {', '.join(sorted(m.host for m in others))})"


def grace_for(session_timeout: float) -> float:
    """The session (`kafka.session_timeout`) and a margin, within `MAX_GRACE`."""
    return min(session_timeout + 2.0, MAX_GRACE)
