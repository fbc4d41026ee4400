"""Source topics are not created by faust: create them, with the partitions configured."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from accrochage.errors import AccrochageError

log = logging.getLogger("accrochage.kafka")


async def ensure_topics(
    bootstrap: str,
    topics: dict[str, int],
    *,
    replication: int = 1,
    timeout: float = 60.0,
) -> None:
    """Create each missing topic; wait (bounded) for a broker that is still starting."""
    deadline = asyncio.get_running_loop().time() + timeout
    waiting = False
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [
                NewTopic(name, partitions, replication)
                for name, partitions in topics.items()
                if name not in existing
            ]
            if missing:
                try:
                    await admin.create_topics(missing)
                    log.info("created topics %s", ", ".join(t.name for t in missing))
                except TopicAlreadyExistsError:
                    pass
            found = {name: n for name, n in topics.items() if name in existing}
            if found:
                await _check_counts(admin, found)
            return
        except KafkaConnectionError as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise AccrochageError(
                    f"no Kafka broker at {bootstrap} after {timeout:.0f} s ({exc}); "
                    "check kafka.bootstrap"
                ) from None
            if not waiting:  # aiokafka's own line, once a minute, did not say what waits
                log.warning(
                    "no Kafka broker at %s yet: waiting up to %.0f s for one (kafka.bootstrap)",
                    bootstrap,
                    timeout,
                )
                waiting = True
            await asyncio.sleep(1.0)
        except KafkaError as exc:
            raise AccrochageError(f"cannot create the topics on {bootstrap}: {exc}") from None
        finally:
            await admin.close()


async def _check_counts(admin: AIOKafkaAdminClient, configured: dict[str, int]) -> None:
    """The existing topics' partition counts compared with those configured: a warning only,
    so a broker that does not describe them is said and the worker starts all the same (it
    stopped, saying it could not create topics that exist)."""
    try:
        described = await admin.describe_topics(list(configured))
    except KafkaError as exc:
        log.warning(
            "could not read the partition counts of %s (%s): not compared with those "
            "configured this time",
            ", ".join(configured),
            type(exc).__name__,
        )
        return
    _say_other_counts(configured, described)


def _say_other_counts(configured: dict[str, int], described: list[dict[str, Any]]) -> None:
    """Warn of an existing topic whose partitions are not those configured: the topic's are
    used (never changed here). Partitions added to a topic in use move keys, so a certifier's
    revocation can be read before the delivery it names: the README says how to add them."""
    for topic in described:
        name, count = topic.get("topic"), len(topic.get("partitions") or ())
        if name not in configured or topic.get("error_code") or count == configured[name]:
            continue
        log.warning(
            "topic %s has %d partition(s) where %d are configured (kafka.partitions; 1 for "
            "alerts.topic): the topic's are used, never changed by accrochage; configure %d "
            'to say so, and read the README ("Adding partitions") before adding any',
            name,
            count,
            configured[name],
            count,
        )
