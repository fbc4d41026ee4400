"""The servers `bench.http` measures the service against, under the same load generator.

- **trivial**: reads the body, answers 201 with a small JSON body. What aiohttp and the
  generator cost: issue 13's ratio is taken against it.
- **durable**: the same, answering only once the body is in a SQLite table (WAL,
  `synchronous = FULL`, as the store) whose transaction committed: one writer thread takes
  every body waiting and stores them in one transaction (group commit), as the service's
  writer does, without decoding, validating or any of the state's rows and indexes. The
  least a durable acknowledgement costs on this disk with this many clients: the floor of
  the service's storing stage.
- **decoding**: the durable one, decoding each body first as the service's serving process
  does (`decode_lean`: JSON, validation, rules, canonical content, the passage rendered in
  the service's schema) and answering 201 only for a valid event. What any design that
  decodes where requests are served and acknowledges only what is durable spends at least,
  with none of the state's rows, indexes, history or outcomes: the ceiling of the ratio
  to the trivial handler that such a design can reach on this machine.

`body_table` and `append_bodies` are that store, shared with `bench.writes`'s baseline.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from pathlib import Path

from aiohttp import web

from accrochage.sinks.profiles import profile_for
from accrochage.streams.decoding import decode_lean
from accrochage.streams.incoming import Incoming
from bench._common import paris_today, registry

CLIENT_MAX_SIZE = 64 * 1024 * 1024


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def _serve(app: web.Application, port: int) -> None:
    app.router.add_get("/health", _health)
    web.run_app(app, host="127.0.0.1", port=port, print=None, handle_signals=True)


def scenario_trivial(port: int) -> None:
    async def accept(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"status": "created"}, status=201)

    app = web.Application(client_max_size=CLIENT_MAX_SIZE)
    app.router.add_post("/events", accept)
    _serve(app, port)


def body_table(path: Path) -> sqlite3.Connection:
    """A one-table store of bodies: WAL and `synchronous = FULL`, as the state."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS bodies (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
    return conn


def append_bodies(conn: sqlite3.Connection, bodies: list[bytes]) -> None:
    """`bodies` appended in one transaction, rolled back whole when it fails."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany("INSERT INTO bodies (body) VALUES (?)", [(b,) for b in bodies])
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class GroupCommit:
    """Bodies stored by one thread, every body waiting in one transaction; each waiter's
    future resolves once its transaction committed."""

    def __init__(self, path: Path) -> None:
        self.conn = body_table(path)
        self.waiting: list[tuple[bytes, asyncio.Future[None]]] = []
        self.ready = threading.Condition()
        self.loop: asyncio.AbstractEventLoop | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        threading.Thread(target=self._run, name="group-commit", daemon=True).start()

    def store(self, body: bytes) -> asyncio.Future[None]:
        assert self.loop is not None
        done: asyncio.Future[None] = self.loop.create_future()
        with self.ready:
            self.waiting.append((body, done))
            self.ready.notify()
        return done

    def _run(self) -> None:
        assert self.loop is not None
        while True:
            with self.ready:
                while not self.waiting:
                    self.ready.wait()
                group, self.waiting = self.waiting, []
            failure: Exception | None = None
            try:
                append_bodies(self.conn, [body for body, _ in group])
            except Exception as exc:  # answered 500 and counted as a failure by the bench
                failure = exc
            self.loop.call_soon_threadsafe(_resolve, [done for _, done in group], failure)


def _resolve(futures: list[asyncio.Future[None]], failure: Exception | None) -> None:
    for done in futures:
        if done.done():
            continue
        if failure is None:
            done.set_result(None)
        else:
            done.set_exception(failure)


def scenario_durable(port: int, database: Path, schema: str | None = None) -> None:
    """The durable handler; with `schema`, decoding each body first in that schema (the
    decoding baseline)."""
    writer = GroupCommit(database)
    decoding = (registry(), profile_for(schema)) if schema is not None else None

    async def accept(request: web.Request) -> web.Response:
        body = await request.read()
        if decoding is not None:
            raws = json.loads(body) if body.lstrip()[:1] == b"[" else [body]
            items = [Incoming(raw) for raw in raws]
            for item in decode_lean(items, decoding[0], paris_today(), None, decoding[1]):
                if item.decoded is None or not item.decoded[0].valid:
                    return web.json_response({"status": "invalid"}, status=422)
        await writer.store(body)
        return web.json_response({"status": "created"}, status=201)

    async def start(app: web.Application) -> None:
        writer.start(asyncio.get_running_loop())

    app = web.Application(client_max_size=CLIENT_MAX_SIZE)
    app.router.add_post("/events", accept)
    app.on_startup.append(start)
    _serve(app, port)
