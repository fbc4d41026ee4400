"""A real single-node Apache Kafka broker (KRaft, loopback only) that the tests start themselves.

The broker runs from the jars gathered by ``tools/kafka/fetch-jars.sh`` (Maven Central, version
pinned in ``tools/kafka/pom.xml``). Ports are free loopback ports picked once per broker and kept
across restarts, with the log dirs: data and committed offsets survive ``restart()`` and
``kill()`` + ``start()``. Every wait is bounded.

The methods are synchronous. They may be called from async code (the readiness probe and the
admin calls then run their own event loop in a worker thread), but they block the caller's loop
while they run.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Self, TypeVar

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[2]
TOOLS_DIR = ROOT / "tools" / "kafka"
POM = TOOLS_DIR / "pom.xml"
FETCH_SCRIPT = TOOLS_DIR / "fetch-jars.sh"
DEFAULT_JARS_DIR = TOOLS_DIR / "jars"

JVM_OPTS = ["-Xmx512m", "-Xms256m", "-XX:+UseSerialGC", "-Djava.awt.headless=true"]
# Short-lived command-line tools (StorageTool) start faster with the C1 compiler only.
TOOL_JVM_OPTS = ["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto"]

LOG4J_PROPERTIES = """\
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
"""

T = TypeVar("T")


def kafka_version() -> str:
    """The pinned broker version (``kafka.version`` in tools/kafka/pom.xml)."""
    match = re.search(r"<kafka\.version>\s*([^<\s]+)\s*</kafka\.version>", POM.read_text())
    if match is None:
        raise RuntimeError(f"kafka.version not found in {POM}")
    return match.group(1)


def _kafka_jar(jars_dir: Path) -> Path:
    return jars_dir / f"kafka_2.13-{kafka_version()}.jar"


def available(jars_dir: Path = DEFAULT_JARS_DIR) -> tuple[bool, str]:
    """Whether a broker can be started here: java on PATH and the jars of the pinned version."""
    if shutil.which("java") is None:
        return False, "java not found on PATH (a JDK 17+ runs the Kafka broker)"
    if not _kafka_jar(jars_dir).is_file():
        return False, (
            f"Kafka {kafka_version()} jars not found in {jars_dir} "
            f"(run {FETCH_SCRIPT.relative_to(ROOT)})"
        )
    return True, f"Kafka {kafka_version()} from {jars_dir}"


def ensure_jars(jars_dir: Path = DEFAULT_JARS_DIR, timeout: float = 900) -> None:
    """Run tools/kafka/fetch-jars.sh when the jars of the pinned version are missing."""
    if _kafka_jar(jars_dir).is_file():
        return
    if jars_dir != DEFAULT_JARS_DIR:
        raise RuntimeError(f"Kafka jars missing in {jars_dir} (only {DEFAULT_JARS_DIR} is fetched)")
    try:
        done = subprocess.run(
            ["bash", str(FETCH_SCRIPT)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"{FETCH_SCRIPT.name} did not finish within {timeout:.0f}s") from exc
    if done.returncode != 0:
        raise RuntimeError(
            f"{FETCH_SCRIPT.name} failed (exit {done.returncode}): "
            f"{(done.stderr or done.stdout).strip()[-2000:]}"
        )
    if not _kafka_jar(jars_dir).is_file():
        raise RuntimeError(f"{FETCH_SCRIPT.name} ran but {_kafka_jar(jars_dir)} is still missing")


def _free_loopback_ports(count: int) -> list[int]:
    """Distinct free TCP ports on 127.0.0.1 (all sockets held open until every port is picked)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _run_coroutine(factory: Callable[[], Awaitable[T]], timeout: float) -> T:
    """Run a coroutine to completion with a bound, even when called from a running event loop."""

    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await factory()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(bounded())
    result: list[T] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            result.append(asyncio.run(bounded()))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=worker, name="kafka-broker-helper", daemon=True)
    thread.start()
    thread.join(timeout + 10)
    if errors:
        raise errors[0]
    if not result:
        raise TimeoutError(f"helper coroutine did not finish within {timeout:.0f}s")
    return result[0]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: SIGKILL the broker if the test process dies without stopping it."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


_LIVE: weakref.WeakSet[KafkaBroker] = weakref.WeakSet()


@atexit.register
def _kill_leftovers() -> None:
    """Never leave a broker behind when the test process exits without stopping it."""
    for broker in list(_LIVE):
        broker.kill()


class KafkaBroker:
    """A single-node KRaft broker+controller on two free loopback ports, data under ``workdir``."""

    def __init__(self, workdir: Path, jars_dir: Path = DEFAULT_JARS_DIR) -> None:
        self.workdir = Path(workdir)
        self.jars_dir = Path(jars_dir)
        self.log_dir = self.workdir / "kafka-logs"
        self.properties_file = self.workdir / "server.properties"
        self.log4j_file = self.workdir / "log4j.properties"
        self.log_file = self.workdir / "broker.log"
        self.port: int | None = None
        self.controller_port: int | None = None
        self.cluster_id: str | None = None
        self.last_start_seconds: float | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log_handle: IO[bytes] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        if self.port is None:
            raise RuntimeError("the broker has never been started")
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 60) -> None:
        """Start the broker (formatting its storage the first time) and wait until it serves."""
        if self.is_running():
            raise RuntimeError(f"broker already running (pid {self.pid})")
        ok, why = available(self.jars_dir)
        if not ok:
            raise RuntimeError(why)
        deadline = time.monotonic() + timeout
        began = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.port is None or self.controller_port is None:
            self.port, self.controller_port = _free_loopback_ports(2)
        self._write_config()
        if not (self.log_dir / "meta.properties").is_file():
            self._format_storage(deadline)
        self._launch()
        self._wait_ready(deadline, timeout)
        self.last_start_seconds = time.monotonic() - began

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM (controlled shutdown), then SIGKILL if still running after ``timeout``."""
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        self._closed()

    def kill(self) -> None:
        """SIGKILL the broker, as a crash would (nothing flushed, no controlled shutdown)."""
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(10)
        self._closed()

    def restart(self, timeout: float = 60) -> None:
        """Stop then start again: same ports, same log dirs, so data and offsets survive."""
        self.stop()
        self.start(timeout)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- helpers for tests -------------------------------------------------------------------

    def create_topic(
        self, name: str, partitions: int, replication_factor: int = 1, timeout: float = 30
    ) -> None:
        """Create a topic with the admin client and wait until its partitions have a leader."""
        bootstrap = self.bootstrap
        _run_coroutine(
            lambda: create_topic(bootstrap, name, partitions, replication_factor), timeout
        )

    def rss_bytes(self) -> int | None:
        """Resident memory of the broker process (Linux), or None when it does not run."""
        if not self.is_running():
            return None
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return None
        match = re.search(r"^VmRSS:\s+(\d+)\s+kB", status, re.MULTILINE)
        return int(match.group(1)) * 1024 if match else None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "(no broker log)"
        return "\n".join(text.splitlines()[-lines:])

    # -- internals ---------------------------------------------------------------------------

    def _java(self) -> str:
        java = shutil.which("java")
        if java is None:
            raise RuntimeError("java not found on PATH")
        return java

    def _classpath(self) -> str:
        return str(self.jars_dir / "*")

    def _write_config(self) -> None:
        port, cport = self.port, self.controller_port
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{cport}",
            "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.log_dir),
            "num.partitions": "1",
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "group.initial.rebalance.delay.ms": "0",
            "group.min.session.timeout.ms": "1000",
            # After kill -9 the restarted broker cannot register until the dead incarnation's
            # session expires (DUPLICATE_BROKER_REGISTRATION): 9 s by default, 4 s here.
            "broker.heartbeat.interval.ms": "500",
            "broker.session.timeout.ms": "4000",
            "num.network.threads": "2",
            "num.io.threads": "4",
            "num.recovery.threads.per.data.dir": "1",
        }
        self.properties_file.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        self.log4j_file.write_text(LOG4J_PROPERTIES)

    def _tool(self, args: list[str], deadline: float) -> str:
        command = [self._java(), *TOOL_JVM_OPTS, "-cp", self._classpath(), *args]
        env = {**os.environ, "KAFKA_LOG4J_OPTS": ""}
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=max(1.0, deadline - time.monotonic()),
                check=False,
                env=env,
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"{args[0]} {args[1]} timed out") from exc
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args)} failed (exit {done.returncode}):\n{done.stdout}{done.stderr}"
            )
        return done.stdout

    def _format_storage(self, deadline: float) -> None:
        if self.cluster_id is None:
            printed = self._tool(["kafka.tools.StorageTool", "random-uuid"], deadline)
            match = re.search(r"[A-Za-z0-9_-]{22}", printed)
            if match is None:
                raise RuntimeError(f"StorageTool random-uuid printed no cluster id: {printed!r}")
            self.cluster_id = match.group(0)
        self._tool(
            [
                "kafka.tools.StorageTool",
                "format",
                "--ignore-formatted",
                "-t",
                self.cluster_id,
                "-c",
                str(self.properties_file),
            ],
            deadline,
        )

    def _launch(self) -> None:
        command = [
            self._java(),
            *JVM_OPTS,
            f"-Dlog4j.configuration=file:{self.log4j_file}",
            f"-Dkafka.logs.dir={self.workdir}",
            "-cp",
            self._classpath(),
            "kafka.Kafka",
            str(self.properties_file),
        ]
        self._log_handle = open(self.log_file, "ab")  # noqa: SIM115 - closed in _closed()
        self._log_handle.write(f"==== starting broker: {' '.join(command)}\n".encode())
        self._log_handle.flush()
        in_main_thread = threading.current_thread() is threading.main_thread()
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            start_new_session=True,
            # PDEATHSIG fires when the *thread* that forked exits: only from the main thread.
            preexec_fn=_die_with_parent if sys.platform == "linux" and in_main_thread else None,
        )
        _LIVE.add(self)

    def _wait_ready(self, deadline: float, timeout: float) -> None:
        bootstrap = self.bootstrap
        last_error = "no attempt"
        while True:
            process = self._process
            if process is None or process.poll() is not None:
                code = process.returncode if process is not None else None
                self._closed()
                raise RuntimeError(
                    f"Kafka broker exited (code {code}) while starting; log tail:\n"
                    f"{self.log_tail()}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise RuntimeError(
                    f"Kafka broker not ready on {bootstrap} within {timeout:.0f}s "
                    f"(last error: {last_error}); log tail:\n{self.log_tail()}"
                )
            try:
                # A cheap, quiet TCP check first: aiokafka logs an error per refused connection.
                with socket.create_connection(("127.0.0.1", self.port or 0), timeout=1):
                    pass
                _run_coroutine(lambda: _probe(bootstrap), min(5.0, max(remaining, 0.5)))
                return
            except Exception as exc:
                last_error = f"{type(exc).__name__}: {exc}"
                time.sleep(0.2)

    def _closed(self) -> None:
        self._process = None
        _LIVE.discard(self)
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None


async def _probe(bootstrap: str) -> None:
    """Ready = a client fetches cluster metadata that lists this broker."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=3000, retry_backoff_ms=100
    )
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
        if not cluster.get("brokers"):
            raise RuntimeError("metadata lists no broker yet")
    finally:
        await admin.close()


async def create_topic(
    bootstrap: str, name: str, partitions: int, replication_factor: int = 1
) -> None:
    """Create a topic (async), then wait until the metadata shows a leader for every partition."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        await admin.start()
        await admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=replication_factor)]
        )
        deadline = asyncio.get_running_loop().time() + 120
        while True:
            assert asyncio.get_running_loop().time() < deadline, f"{name}: no leader in 120 s"
            described = await admin.describe_topics([name])
            parts = described[0].get("partitions", []) if described else []
            if (
                described
                and described[0].get("error_code", 1) == 0
                and len(parts) == partitions
                and all(p.get("leader", -1) >= 0 for p in parts)
            ):
                return
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
