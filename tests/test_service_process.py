"""`accrochage run` as a real process: CLI commands beside it, and a graceful stop on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import IO, Any

import aiohttp
import pytest

from accrochage.generate import GeneratedCertifier, generate_events
from tests.support.crash import BACKGROUND, disposition
from tests.test_tracker import write_config

DEADLINE = 30.0
COMMAND = (sys.executable, "-m", "accrochage")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "accrochage", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _reaped(process: subprocess.Popen[Any]) -> None:
    """A child still running when its test ends (a failed assertion) is killed and reaped."""
    if process.poll() is None:
        process.kill()
        process.wait(30)  # reaped first: its helpers, seeing it gone, end and close its pipes
        process.communicate(timeout=30)


async def wait_healthy(
    base: str, service: subprocess.Popen[bytes], *, degraded: str | None = None
) -> None:
    """Until the service answers `/health` ok (`degraded`: or degraded for that reason, as a
    service started on a disk below `state.keep_free_bytes` is from its start)."""
    start = time.monotonic()
    async with aiohttp.ClientSession() as session:
        while time.monotonic() - start < DEADLINE:
            assert service.poll() is None, "the service exited while starting"
            try:
                async with session.get(f"{base}/health") as response:
                    if response.status == 200:
                        return
                    if degraded is not None and (await response.json())["reason"] == degraded:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("the service did not answer /health in time")


async def post_all(base: str, events: list[dict[str, object]]) -> list[int]:
    connector = aiohttp.TCPConnector(limit=8)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def post(event: dict[str, object]) -> int:
            async with session.post(f"{base}/events", json=event) as response:
                return response.status

        return list(await asyncio.gather(*(post(e) for e in events)))


async def test_cli_beside_the_service_and_graceful_sigterm(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(
        tmp_path, api={"bind": f"127.0.0.1:{port}"}, batching={"tick": "1s", "max_delay": "1h"}
    )
    today = date.today() - timedelta(days=1)
    events = list(
        generate_events(
            400,
            [GeneratedCertifier("pix", ["RS5875"]), GeneratedCertifier("school", ["RNCP35726"])],
            today=today,
            seed=7,
            max_age_days=10,
        )
    )
    log = (tmp_path / "service.log").open("wb")
    service = subprocess.Popen(
        [sys.executable, "-m", "accrochage", "--config", str(config), "run"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_healthy(base, service)
        first = asyncio.create_task(post_all(base, events[:200]))
        # The CLI writes and reads the same state while the service ingests.
        ingested = await asyncio.to_thread(cli, config, "outstanding", "--format", "json")
        statuses = await first
        assert set(statuses) == {201}
        assert ingested.returncode == 0, ingested.stderr
        json.loads(ingested.stdout)
        flushed = await asyncio.to_thread(cli, config, "flush", "--force")
        assert flushed.returncode == 0, flushed.stderr
        assert "wrote" in flushed.stdout

        # SIGTERM while requests are in flight: every answered event is stored.
        second = asyncio.create_task(post_all(base, events[200:]))
        await asyncio.sleep(0.05)
        service.send_signal(signal.SIGTERM)
        answered = await asyncio.gather(second, return_exceptions=True)
        assert service.wait(timeout=DEADLINE) == 0
    finally:
        _reaped(service)
        log.close()
    summary = json.loads(cli(config, "summary", "--format", "json").stdout)
    stored = summary["records"]
    accepted = 200 + (answered[0].count(201) if isinstance(answered[0], list) else 0)
    assert stored >= accepted, (stored, accepted)
    assert stored <= 400


async def test_a_second_service_on_the_same_state_refuses_to_start_naming_the_first(
    tmp_path: Path,
) -> None:
    """Two services on one state would each cut, write and alert on their own timer, their
    clients split between two ports: the second refuses at once (before its state check),
    the first serves on; once the first is gone, the state is free to serve again."""
    port = free_port()
    config = write_config(tmp_path, api={"bind": f"127.0.0.1:{port}"})
    other = tmp_path / "other"
    other.mkdir()
    second_config, second_port = other / "accrochage.toml", free_port()
    text = config.read_text(encoding="utf-8")
    assert f"127.0.0.1:{port}" in text and str(tmp_path / "var" / "state.db") in text
    second_config.write_text(
        text.replace(f"127.0.0.1:{port}", f"127.0.0.1:{second_port}"), encoding="utf-8"
    )
    first = subprocess.Popen([*COMMAND, "--config", str(config), "run"], stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_healthy(base, first)
        refused = await asyncio.to_thread(cli, second_config, "run")
        assert refused.returncode == 1, refused.stderr
        errors = [line for line in refused.stderr.splitlines() if not LOG_LINE.match(line)]
        assert len(errors) == 1, refused.stderr
        assert errors[0].startswith("error: another service runs on the state"), errors
        assert f"(process {first.pid}:" in errors[0]
        assert "paths.state" in errors[0]
        await wait_healthy(base, first)  # untouched
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=DEADLINE) == 0
    finally:
        _reaped(first)
    second = subprocess.Popen([*COMMAND, "--config", str(second_config), "run"])
    try:
        await wait_healthy(f"http://127.0.0.1:{second_port}", second)
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=DEADLINE) == 0
    finally:
        _reaped(second)


LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0[12]:00 (INFO|WARNING|ERROR) ")


def test_a_busy_port_is_one_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tmp_path, api={"bind": f"127.0.0.1:{port}"})
        done = cli(config, "run")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "started" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if not LOG_LINE.match(line)]
    assert len(errors) == 1, done.stderr
    assert errors[0].startswith(f"error: cannot listen on 127.0.0.1:{port} (api.bind)")


@pytest.mark.parametrize("command", ["run", "worker"])
def test_a_state_folder_the_service_cannot_create_is_one_line_not_a_traceback(
    tmp_path: Path, command: str
) -> None:
    """The first start under systemd, or a lock file a root `run` left: a PermissionError or
    FileNotFoundError traceback before; `ingest` and `flush` already said it in one line."""
    config = write_config(tmp_path, paths={"state": "/proc/no-such-folder/state.db"})
    done = cli(config, command)
    assert done.returncode != 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert "cannot open the service lock /proc/no-such-folder/state.db.lock" in done.stderr
    assert "check paths.state" in done.stderr


def with_a_written_file(tmp_path: Path, count: int) -> tuple[Path, list[dict[str, Any]]]:
    """A configuration whose state holds `count` pix records in a written file, and the
    batches as `batches --format json` lists them."""
    events = tmp_path / "events.jsonl"
    generated = generate_events(count, [GeneratedCertifier("pix", ("RS5875",))], today=date.today())
    events.write_text("".join(json.dumps(e) + "\n" for e in generated), encoding="utf-8")
    config = write_config(tmp_path)
    assert cli(config, "ingest", str(events)).returncode == 0
    assert cli(config, "flush", "--force").returncode == 0
    return config, json.loads(cli(config, "batches", "--format", "json").stdout)


def test_an_outbox_no_file_can_be_written_in_stops_the_service_before_it_records_anything(
    tmp_path: Path,
) -> None:
    """`paths.outbox` under /proc (or a folder the service's user may not create): the files
    already written were recorded under it at start, then every tick failed to write them
    again while /health said ok."""
    config, recorded = with_a_written_file(tmp_path, 3)
    bad = write_config(tmp_path, paths={"outbox": "/proc/no-outbox"}, name="bad.toml")
    for command in ("run", "deposited"):
        args = [command, recorded[0]["batch_id"]] if command == "deposited" else [command]
        done = cli(bad, *args)
        assert done.returncode == 2, done.stderr
        assert "paths.outbox /proc/no-outbox cannot be written" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr and "started" not in done.stderr
    assert json.loads(cli(config, "batches", "--format", "json").stdout) == recorded


def test_a_fatal_start_error_is_a_json_line_when_the_service_logs_json(tmp_path: Path) -> None:
    """A log collector reading JSON lines dropped the plain `error: ...` line: the one that
    says why the service is not running."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tmp_path, api={"bind": f"127.0.0.1:{port}"})
        done = cli(config, "run", "--log-format", "json")
    assert done.returncode == 1, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    (last,) = [line for line in lines if line["level"] == "CRITICAL"]
    assert last["message"].startswith(f"error: cannot listen on 127.0.0.1:{port} (api.bind)")


def test_a_busy_port_stops_the_service_before_it_does_anything(tmp_path: Path) -> None:
    """`run` on a port it cannot bind fails before its writer process and its timer start:
    pending records due now (forced by max_records = 1) are not cut, no file is written."""
    events = tmp_path / "events.jsonl"
    generated = generate_events(
        5, [GeneratedCertifier("pix", ("RS5875",))], today=date.today(), seed=3
    )
    events.write_text("".join(json.dumps(e) + "\n" for e in generated), encoding="utf-8")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(
            tmp_path, api={"bind": f"127.0.0.1:{port}"}, batching={"max_records": 1}
        )
        assert cli(config, "ingest", str(events)).returncode == 0
        done = cli(config, "run")
    assert done.returncode == 1, done.stderr
    assert "cannot listen" in done.stderr
    summary = json.loads(cli(config, "summary", "--format", "json").stdout)
    assert (summary["records"], summary["by_status"]) == (5, {"pending": 5}), summary
    assert not summary["batches"], summary
    outbox = tmp_path / "var" / "outbox"
    assert not outbox.exists() or not any(outbox.rglob("*.xml"))


def test_a_busy_port_stops_the_service_before_it_records_file_paths_anew(tmp_path: Path) -> None:
    """A state copied elsewhere, its files recorded under the original's outbox: `run` on a
    port in use recorded them under its own outbox, then said it could not listen."""
    config, recorded = with_a_written_file(tmp_path, 2)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        other = write_config(
            tmp_path,
            paths={"outbox": str(tmp_path / "other")},
            api={"bind": f"127.0.0.1:{port}"},
            name="other.toml",
        )
        done = cli(other, "run")
    assert done.returncode == 1 and "cannot listen" in done.stderr, done.stderr
    assert "recorded under" not in done.stderr, done.stderr
    assert json.loads(cli(config, "batches", "--format", "json").stdout) == recorded


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["TERM", "HUP"])
async def test_started_and_stopped_are_logged_with_paris_time(
    tmp_path: Path, signum: signal.Signals
) -> None:
    """SIGHUP stops it as SIGTERM does: its default action killed it with nothing said."""
    port = free_port()
    config = write_config(tmp_path, api={"bind": f"127.0.0.1:{port}"})
    service = subprocess.Popen(
        [sys.executable, "-m", "accrochage", "--config", str(config), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "TZ": "UTC"},
    )
    try:
        await wait_healthy(f"http://127.0.0.1:{port}", service)
        service.send_signal(signum)
        _, err = service.communicate(timeout=DEADLINE)
    finally:
        _reaped(service)
    assert service.returncode == 0, err
    lines = err.splitlines()
    assert lines and all(LOG_LINE.match(line) for line in lines), err
    started = [i for i, line in enumerate(lines) if "service started on" in line]
    stopped = [i for i, line in enumerate(lines) if "service stopped" in line]
    assert len(started) == 1 and len(stopped) == 1 and started[0] < stopped[0], err
    assert f"http://127.0.0.1:{port}" in lines[started[0]]


def _holding(pids: list[int], state: Path) -> list[int]:
    """The processes among `pids` with `state` open (Linux)."""
    found = []
    for pid in pids:
        try:
            opened = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:
            continue
        if str(state) in opened:
            found.append(pid)
    return found


def _children(pid: int) -> list[int]:
    """The live children of `pid` (Linux)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
            if int(ppid) == pid and state not in ("Z", "X"):
                found.append(int(entry.name))
    return found


async def test_a_writer_process_that_ended_stops_the_service_for_its_supervisor(
    tmp_path: Path,
) -> None:
    """Its writer process killed (the OOM killer's choice), `run` answered 503 to every event
    and went on serving /metrics: nothing restarted it (systemd's `Restart=on-failure` waits
    for a failed exit, Prometheus's `up` stayed 1) until someone read /health. It stops
    instead, saying why, with exit 70 as the Kafka worker does, and a restart stores again."""
    port = free_port()
    config = write_config(tmp_path, api={"bind": f"127.0.0.1:{port}"})
    state = tmp_path / "var" / "state.db"
    base = f"http://127.0.0.1:{port}"
    command = [*COMMAND, "--config", str(config), "run", "--log-format", "json"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    service = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    try:
        await wait_healthy(base, service)
        helpers = [p for s in _children(service.pid) for p in _children(s)]
        writers = _holding(helpers, state.resolve())
        assert len(writers) == 1, writers
        os.kill(writers[0], signal.SIGKILL)
        _, err = service.communicate(timeout=DEADLINE)
    finally:
        _reaped(service)
    assert service.returncode == 70, err
    lines = [json.loads(line) for line in err.splitlines()]
    assert "stopping (the writer process ended)" in [line["message"] for line in lines], err
    assert lines[-1]["level"] == "CRITICAL" and "exit 70" in lines[-1]["message"], err
    again = subprocess.Popen(command, stderr=subprocess.DEVNULL, env=env)
    try:
        await wait_healthy(base, again)
        today = date.today() - timedelta(days=1)
        event = next(generate_events(1, [GeneratedCertifier("pix", ["RS5875"])], today=today))
        assert await post_all(base, [event]) == [201]
        again.send_signal(signal.SIGTERM)
        assert again.wait(timeout=DEADLINE) == 0
    finally:
        _reaped(again)


async def test_a_stop_held_by_a_request_in_flight_says_what_it_waits_for(
    tmp_path: Path,
) -> None:
    """A client that sent half a body held the stop 30 s, with nothing in the log."""
    port = free_port()
    config = write_config(tmp_path, api={"bind": f"127.0.0.1:{port}"})
    service = subprocess.Popen(
        [sys.executable, "-m", "accrochage", "--config", str(config), "run"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        await wait_healthy(f"http://127.0.0.1:{port}", service)
        with socket.create_connection(("127.0.0.1", port)) as client:
            client.sendall(
                b"POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b'Content-Length: 1000\r\n\r\n{"half": '
            )
            _answered_after(port)  # connections are accepted in order: the half one is in
            service.send_signal(signal.SIGTERM)
            assert service.stderr is not None
            deadline = time.monotonic() + DEADLINE
            said = ""
            while "stopping" not in said and time.monotonic() < deadline:
                said = service.stderr.readline()
        waiting = re.search(
            r"stopping \(SIGTERM\): waiting up to 30 s for the requests in flight "
            r"\((\d+) connection\(s\) open\)",
            said,
        )
        assert waiting is not None, said
        assert int(waiting[1]) >= 1, "the half-sent request was not counted"
    finally:
        _reaped(service)


def _answered_after(port: int) -> None:
    """A request on a new connection answered: the service accepted every connection made
    before it (the kernel queues them in order, the server accepts them in that order)."""
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as probe:
        probe.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := probe.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer[:100]


STOPPING_APP = """
import asyncio, socket, sys
from aiohttp import web
from accrochage.runtimes.serving import serve

async def lifecycle(app):
    yield
    print("cleaning", flush=True)
    await asyncio.sleep(1.0)  # a cleanup that takes a while: the writer, the timer
    print("cleaned", flush=True)

app = web.Application()
app.cleanup_ctx.append(lifecycle)
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen()
sock.setblocking(False)
asyncio.run(serve(app, sock, lambda: print("started", flush=True)))
print("returned", flush=True)
"""


def _read_until(stream: IO[str], word: str) -> list[str]:
    lines = []
    for line in stream:  # bounded: the child ends, or the test's timeout does
        lines.append(line.strip())
        if line.strip() == word:
            return lines
    raise AssertionError(f"{word!r} never came: {lines}")


def test_a_second_stop_signal_does_not_cut_the_cleanup_short() -> None:
    """SIGTERM, then SIGTERM (or Ctrl-C) again while the service cleans up, as `timeout` and
    impatient hands do: the cleanup runs to its end and `serve` returns; before, the second
    signal raised inside the loop and the unfinished cleanup was destroyed while pending."""
    child = subprocess.Popen(
        [sys.executable, "-c", STOPPING_APP],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        _read_until(child.stdout, "started")
        child.send_signal(signal.SIGTERM)
        _read_until(child.stdout, "cleaning")
        child.send_signal(signal.SIGTERM)
        child.send_signal(signal.SIGINT)
        rest, err = child.communicate(timeout=DEADLINE)
    finally:
        _reaped(child)
    assert rest.split() == ["cleaned", "returned"], (rest, err)
    assert child.returncode == 0, err
    assert "destroyed" not in err and "Traceback" not in err, err


@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGHUP, signal.SIGTERM], ids=["INT", "HUP", "TERM"]
)
async def test_ctrl_c_stops_the_service_and_its_helpers_in_order(
    tmp_path: Path, signum: signal.Signals
) -> None:
    """Ctrl-C, a closed terminal (SIGHUP) or systemd's default stop (SIGTERM) signals the
    whole process group: the helpers (writer, decode and render processes) leave the stop to
    the service, which ends them in order (a group's SIGTERM ends the pools' processes, not
    the fork server nor the writer). Once, each decode process died of a KeyboardInterrupt of
    its own: tracebacks in a JSON log, a request lost, and under load a service that never
    exited; SIGHUP killed the writer and the pools while the service stopped."""
    port = free_port()
    config = write_config(
        tmp_path,
        api={"bind": f"127.0.0.1:{port}"},
        batching={"tick": "1s", "max_delay": "1s", "render_processes": 1},
    )
    today = date.today() - timedelta(days=1)
    certifiers = [GeneratedCertifier("pix", ["RS5875"])]
    events = list(generate_events(60, certifiers, today=today, seed=3, max_age_days=10))
    log_path = tmp_path / "service.log"
    with log_path.open("wb") as log:
        service = subprocess.Popen(
            [*COMMAND, "--config", str(config), "run", "--log-format", "json"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            await wait_healthy(base, service)
            async with (
                aiohttp.ClientSession() as session,
                session.post(f"{base}/events", json=events) as response,
            ):
                assert response.status == 200  # an array: through the decode processes
            os.killpg(service.pid, signum)
            assert service.wait(timeout=DEADLINE) == 0
        finally:
            if service.poll() is None:
                os.killpg(service.pid, signal.SIGKILL)
            _reaped(service)
    lines = log_path.read_text(encoding="utf-8").splitlines()
    assert "KeyboardInterrupt" not in "\n".join(lines)
    assert f"stopping ({signum.name})" in "\n".join(lines)
    print("\n".join(lines))
    for line in lines:
        assert isinstance(json.loads(line), dict), line
    deadline = time.monotonic() + DEADLINE
    while _group_alive(service.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _group_alive(service.pid), "a helper outlived the service"


@pytest.mark.parametrize(
    ("launcher", "signum"),
    [(("nohup",), signal.SIGHUP), (BACKGROUND, signal.SIGINT)],
    ids=["nohup-HUP", "script-background-INT"],
)
async def test_a_service_started_with_a_signal_ignored_keeps_it_ignored(
    tmp_path: Path, launcher: tuple[str, ...], signum: signal.Signals
) -> None:
    """`nohup accrochage run &` starts it with SIGHUP ignored, so that closing the terminal
    leaves it running; a shell without job control (a script's `accrochage run &`) starts it
    with SIGINT ignored, so that a Ctrl-C meant for the script, which reaches its whole
    process group, leaves it running. The service caught either and stopped on it all the
    same. The kernel says what the service does with it (ignored: discarded as it is sent);
    SIGTERM then stops it."""
    assert shutil.which(launcher[0]) is not None, f"{launcher[0]} is missing"
    port = free_port()
    config = write_config(tmp_path, api={"bind": f"127.0.0.1:{port}"})
    log_path = tmp_path / "service.log"
    with log_path.open("wb") as log:
        service = subprocess.Popen(
            [*launcher, *COMMAND, "--config", str(config), "run"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
        try:
            await wait_healthy(f"http://127.0.0.1:{port}", service)
            assert disposition(service.pid, signum) == "ignored"
            assert disposition(service.pid, signal.SIGTERM) == "caught"
            os.killpg(service.pid, signum)
            await wait_healthy(f"http://127.0.0.1:{port}", service)
            os.killpg(service.pid, signal.SIGTERM)
            assert service.wait(timeout=DEADLINE) == 0
        finally:
            if service.poll() is None:
                os.killpg(service.pid, signal.SIGKILL)
            _reaped(service)
    text = log_path.read_text(encoding="utf-8")
    assert "stopping (SIGTERM)" in text and signum.name not in text, text


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


async def test_a_second_service_through_a_symbolic_link_refuses_to_start(tmp_path: Path) -> None:
    """Another name of the same state (a symbolic link) took locks of its own: two services
    served one state, each holding "the" write lock."""
    port = free_port()
    config = write_config(tmp_path, api={"bind": f"127.0.0.1:{port}"})
    state = tmp_path / "var" / "state.db"
    other = tmp_path / "other"
    other.mkdir()
    (other / "state.db").symlink_to(state)
    second_config = other / "accrochage.toml"
    second_config.write_text(
        config.read_text(encoding="utf-8")
        .replace(f"127.0.0.1:{port}", f"127.0.0.1:{free_port()}")
        .replace(str(state), str(other / "state.db")),
        encoding="utf-8",
    )
    first = subprocess.Popen([*COMMAND, "--config", str(config), "run"], stderr=subprocess.PIPE)
    try:
        await wait_healthy(f"http://127.0.0.1:{port}", first)
        refused = await asyncio.to_thread(cli, second_config, "run")
        assert refused.returncode == 1, refused.stderr
        assert "another service runs on the state" in refused.stderr, refused.stderr
        assert f"(process {first.pid}:" in refused.stderr
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=DEADLINE) == 0
    finally:
        _reaped(first)


def test_a_state_with_a_second_hard_link_is_refused_by_every_command(tmp_path: Path) -> None:
    """Two hard links are two names SQLite keeps a WAL beside each: two services writing
    through them corrupted the database in seconds (the review's run)."""
    config = write_config(tmp_path)
    assert cli(config, "flush").returncode == 0, "creates the state"
    state = tmp_path / "var" / "state.db"
    os.link(state, tmp_path / "var" / "again.db")
    for command in ("summary", "flush", "run"):
        refused = cli(config, command)
        assert refused.returncode == 1, (command, refused.stderr)
        assert "has 2 names (hard links)" in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
    (tmp_path / "var" / "again.db").unlink()
    assert cli(config, "summary").returncode == 0


def _damage(state: Path) -> None:
    """Every third page after the first written over: the header stays readable."""
    page = 4096
    with state.open("r+b") as handle:
        size = handle.seek(0, os.SEEK_END)
        for offset in range(2 * page, size, 3 * page):
            handle.seek(offset)
            handle.write(b"\xde\xad\xbe\xef" * (page // 4))


async def test_a_state_damaged_under_the_running_service_is_said_storage_corrupt(
    tmp_path: Path,
) -> None:
    """CONTRACT §8: a damaged state found while serving answers 503 `storage_corrupt` with
    the way out, never a 500; `/health` says degraded from then on."""
    events = tmp_path / "events.jsonl"
    generated = generate_events(300, [GeneratedCertifier("pix", ("RS5875",))], today=date.today())
    events.write_text("".join(json.dumps(e) + "\n" for e in generated), encoding="utf-8")
    port = free_port()
    config = write_config(tmp_path, api={"bind": f"127.0.0.1:{port}"})
    assert cli(config, "ingest", str(events)).returncode == 0
    log = (tmp_path / "service.log").open("wb")
    service = subprocess.Popen(
        [*COMMAND, "--config", str(config), "run"], stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_healthy(base, service)
        _damage(tmp_path / "var" / "state.db")
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/records", params={"limit": "1000"}) as response:
                assert response.status == 503, await response.text()
                error = (await response.json())["error"]
            async with session.get(f"{base}/health") as response:
                assert response.status == 503
                health = await response.json()
    finally:
        service.send_signal(signal.SIGTERM)
        _reaped(service)
        log.close()
    assert error["code"] == "storage_corrupt"
    assert "restore the last backup" in error["message"]
    assert (health["status"], health["reason"]) == ("degraded", "storage_corrupt")


def test_a_state_path_naming_a_folder_is_said_to_be_one(tmp_path: Path) -> None:
    """An empty `paths.state` (as an empty `schema.xsd` means the bundled one) is the
    configuration's folder: the message spoke of hard links to remove, a folder's entries."""
    for state in ("", str(tmp_path / "var")):
        (tmp_path / "var").mkdir(exist_ok=True)
        config = write_config(tmp_path, paths={"state": state})
        for command in ("summary", "flush"):
            refused = cli(config, command)
            assert refused.returncode == 1, (command, refused.stderr)
            assert "is a folder: name the state's file" in refused.stderr, refused.stderr
            assert "hard links" not in refused.stderr
