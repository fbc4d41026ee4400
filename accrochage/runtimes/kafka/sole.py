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
"""

from __future__ import annotations

import asyncio
import logging
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
"""The longest another member is given to leave at the first assignment: the seek that waits
for it is bounded by `seeking.SEEK_SECONDS` (60 s). A session longer than this may leave a
worker killed a moment ago in the group past it: the worker started then stops, and started
again once that session ended, reads on."""


class GroupShared(AccrochageError):
    """Another consumer is a member of the worker's consumer group: it must not read on."""


async def group_hosts(bootstrap: str, group: str, seconds: float = DESCRIBE_SECONDS) -> list[str]:
    """The host of each member of `group`, as the broker knows them; raises `KafkaError`,
    `TimeoutError` or `OSError` when the broker does not say."""
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
    return [str(member[2]) for member in described[5]]  # member_id, client_id, client_host


@dataclass
class SoleMember:
    """Checks, at each assignment, that the worker is its group's only member (see above)."""

    bootstrap: str
    group: str
    grace: float = 0.0
    """How long another member found at the first assignment is given to leave: a worker
    killed a moment ago stays a member until its session ends (`grace_for`)."""
    first: bool = True
    """No assignment yet: another member found now joined first. A worker whose first look
    failed (said in the log) reads on, and is no newcomer at the next assignment."""

    async def __call__(self) -> None:
        first, self.first = self.first, False  # a worker reading since is not a newcomer
        hosts = await self._hosts()
        if hosts is None:
            return
        if first:
            hosts = await self._until_alone(hosts)
        if len(hosts) <= 1:
            return
        said = (
            f"the consumer group {self.group!r} (kafka.group) has {len(hosts)} members (hosts "
            f"{', '.join(sorted(hosts))}): another worker, with a state of its own, reads "
            "kafka.topic"
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

    async def _hosts(self) -> list[str] | None:
        try:
            return await group_hosts(self.bootstrap, self.group)
        except (KafkaError, TimeoutError, OSError) as exc:
            log.warning("could not read who is in the consumer group (%s): not checked", exc)
            return None

    async def _until_alone(self, hosts: list[str]) -> list[str]:
        """The members once the others left, or those left after `grace`: a member killed
        while it joined is part of the generation that follows, until its session ends."""
        deadline = asyncio.get_running_loop().time() + self.grace
        while len(hosts) > 1 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(POLL_SECONDS)
            hosts = await self._hosts() or hosts
        return hosts


def grace_for(session_timeout: float) -> float:
    """The session (`kafka.session_timeout`) and a margin, within `MAX_GRACE`."""
    return min(session_timeout + 2.0, MAX_GRACE)
