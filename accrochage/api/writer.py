"""Group commit: concurrent requests share one transaction on the single writer thread.

Each request's events join a queue; the writer takes everything queued (up to a bound),
ingests it in one transaction, and only then resolves each request's future, so a 2xx is
never sent before the commit.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from accrochage.streams.ingest import Incoming, Ingestor, IngestResult

MAX_GROUP = 2000


@dataclass(slots=True)
class _Request:
    items: list[Incoming]
    done: asyncio.Future[list[IngestResult]]


class GroupWriter:
    def __init__(self, ingestor: Ingestor) -> None:
        self.ingestor = ingestor
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="writer")
        self._queue: asyncio.Queue[_Request] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="group-writer")

    async def submit(self, items: list[Incoming]) -> list[IngestResult]:
        done: asyncio.Future[list[IngestResult]] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Request(items, done))
        return await done

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            group = [await self._queue.get()]
            size = len(group[0].items)
            while size < MAX_GROUP and not self._queue.empty():
                request = self._queue.get_nowait()
                group.append(request)
                size += len(request.items)
            items = [item for request in group for item in request.items]
            try:
                results = await loop.run_in_executor(self.executor, self.ingestor.ingest, items)
            except Exception as exc:  # the transaction rolled back: every request fails
                for request in group:
                    if not request.done.done():
                        request.done.set_exception(exc)
                continue
            start = 0
            for request in group:
                end = start + len(request.items)
                if not request.done.done():
                    request.done.set_result(results[start:end])
                start = end

    async def stop(self) -> None:
        """Finish what is queued, then stop."""
        while not self._queue.empty():
            await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.executor.shutdown(wait=True)
