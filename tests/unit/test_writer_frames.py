"""The framing between the HTTP service and its writer process: every message arrives whole
and in order, several at once or one split over many reads, larger than the socket's buffer."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

from accrochage.api.frames import FrameSocket, frame
from accrochage.api.writer_child import END, Inbox


def test_the_inbox_takes_every_waiting_message_and_the_end() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.sendall(frame(["a"]) + frame(["b"]))
        inbox = Inbox(theirs)
        assert inbox.take() == [["a"], ["b"]]
        whole = frame(["c" * 100_000]) + frame(END)
        ours.sendall(whole[:7])
        sender = threading.Timer(0.05, ours.sendall, (whole[7:],))
        sender.start()
        assert inbox.take() == [["c" * 100_000], END]  # waits for the rest of a split message
        sender.join()


def test_the_inbox_ends_when_the_socket_closes() -> None:
    ours, theirs = socket.socketpair()
    with theirs:
        ours.sendall(frame(["last"]))
        ours.close()
        inbox = Inbox(theirs)
        taken = inbox.take()
        if taken == [["last"]]:
            taken = inbox.take()
        assert taken[-1] is END


def test_the_inbox_ends_when_the_serving_process_dies_with_answers_unread() -> None:
    """A `kill -9` of the service, answers still unread on its side, resets the socket: the
    writer process takes it as the end, as a close (no ConnectionResetError traceback)."""
    ours, theirs = socket.socketpair()
    with theirs:
        theirs.sendall(frame("an answer never read"))
        ours.close()
        assert Inbox(theirs).take() == [END]


async def test_frame_socket_sends_more_than_the_buffer_and_receives_in_order() -> None:
    ours, theirs = socket.socketpair()
    received: list[Any] = []
    lost: list[BaseException | None] = []
    link = FrameSocket(ours, received.append, lost.append)
    big = ["x" * 4_000_000]
    link.send(big)
    link.send(["after"])
    inbox = Inbox(theirs)
    got: list[Any] = []
    while len(got) < 2:
        got += await asyncio.to_thread(inbox.take)
    assert got == [big, ["after"]]
    theirs.sendall(frame("one") + frame("two"))
    theirs.close()
    for _ in range(3000):  # bounded: 30 s
        if lost:
            break
        await asyncio.sleep(0.01)
    assert received == ["one", "two"]
    assert lost == [None]  # the other end closed: reported once
    link.close()
