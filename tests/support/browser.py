"""A real headless Chromium (Debian's `chromium`), driven over the DevTools protocol.

No driver package and nothing downloaded: the browser is started with
`--remote-debugging-port=0`, its WebSocket address read from its stderr, and aiohttp speaks
the protocol. Every console message, uncaught exception and failed load is collected, so a
test can assert that a page has none.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import shutil
import subprocess
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM = "/usr/bin/chromium"
START_TIMEOUT = 30.0
COMMAND_TIMEOUT = 30.0
_LISTENING = re.compile(rb"DevTools listening on (ws://\S+)")


def chromium_path() -> str | None:
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")


class Page:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.problems: list[str] = []
        self.events: list[dict[str, Any]] = []
        self._next = 0
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            data = json.loads(message.data)
            if "id" in data and data["id"] in self._waiting:
                self._waiting.pop(data["id"]).set_result(data)
                continue
            self.events.append(data)
            method, params = data.get("method"), data.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                self.problems.append(f"console.{params['type']}: {params.get('args')}")
            elif method == "Runtime.exceptionThrown":
                self.problems.append(f"exception: {params.get('exceptionDetails')}")
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                self.problems.append(f"log: {params['entry'].get('text')}")

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        self._next += 1
        done: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[self._next] = done
        await self.ws.send_str(json.dumps({"id": self._next, "method": method, "params": params}))
        answer = await asyncio.wait_for(done, COMMAND_TIMEOUT)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return dict(answer.get("result", {}))

    async def open(self, url: str, headers: dict[str, str], timeout: float = 30.0) -> None:
        for domain in ("Page", "Runtime", "Log", "Network"):
            await self.send(f"{domain}.enable")
        await self.send("Network.setExtraHTTPHeaders", headers=headers)
        seen = len(self.events)
        await self.send("Page.navigate", url=url)
        async with asyncio.timeout(timeout):
            while not any(e.get("method") == "Page.loadEventFired" for e in self.events[seen:]):
                await asyncio.sleep(0.05)

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluate failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def screenshot(self, path: Path) -> Path:
        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


@contextlib.asynccontextmanager
async def chromium(profile: Path) -> AsyncIterator[Page]:
    """A headless Chromium with one blank page; killed on exit, whatever happened."""
    executable = chromium_path()
    assert executable is not None, "chromium is not installed (scripts/test.sh installs it)"
    proc = subprocess.Popen(
        [
            executable,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "--window-size=1280,1200",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert proc.stderr is not None
        url = await asyncio.wait_for(asyncio.to_thread(_listening, proc.stderr), START_TIMEOUT)
        # Keep reading its stderr: a full pipe would block the browser.
        threading.Thread(target=_drain, args=(proc.stderr,), daemon=True).start()
        http_base = "http://" + url.split("/")[2]
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            async with session.get(f"{http_base}/json/list") as response:
                targets = await response.json(content_type=None)
            (target,) = [t for t in targets if t.get("type") == "page"][:1]
            async with session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                page = Page(ws)
                try:
                    yield page
                finally:
                    await page.close()
    finally:
        proc.kill()
        proc.wait(30)


def _listening(stream: Any) -> str:
    seen = b""
    for line in stream:
        seen += line
        found = _LISTENING.search(line)
        if found:
            return found.group(1).decode()
    raise AssertionError(f"chromium did not start its DevTools server:\n{seen.decode()[-2000:]}")


def _drain(stream: Any) -> None:
    for _ in stream:
        pass
    stream.close()
