"""One service per state: what `run` and `worker` hold while they serve it."""

from __future__ import annotations

from abc import ABC, abstractmethod


class ServiceGuard(ABC):
    """Held by the one service (`accrochage run` or `worker`) serving a state, and released
    by the system when its holder dies, even by SIGKILL: no process ever guesses whether the
    holder is alive. A second worker waits on it as a standby and takes over; a second `run`
    refuses to start, naming the first (two services on one state would each cut, write and
    alert on their own timer, and split the clients between two ports)."""

    @abstractmethod
    def try_acquire(self) -> bool:
        """Hold it now if it is free; False when another service holds it."""

    @abstractmethod
    def acquire_or_refuse(self) -> None:
        """Hold it now, or `ServiceTaken` naming the service that holds it."""

    @abstractmethod
    def wait(self, poll: float = 0.5) -> None:
        """Block until this process holds it: the standby's whole job."""

    @abstractmethod
    def release(self) -> None: ...
