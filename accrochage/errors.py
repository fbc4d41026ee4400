"""One exception root for everything accrochage raises on purpose.

Messages say what is wrong and how to fix it; callers (CLI, HTTP) turn them into an exit
code or the one JSON error shape without inspecting the text: each class carries its `code`
and the HTTP `status` it answers with.
"""


class AccrochageError(Exception):
    """Root of every error accrochage raises deliberately."""

    code = "accrochage_error"
    status = 400


class BadParameter(AccrochageError):
    """A parameter of a query or a command is malformed; the message names it."""

    code = "bad_parameter"
    status = 400


class FieldError(BadParameter):
    """One named field of a request body or a command's input is not acceptable: the HTTP
    answer is `422 invalid_body` with the field in its details, as for a body's type errors."""

    code = "invalid_body"
    status = 422

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field

    @property
    def details(self) -> list[dict[str, str]]:
        return [{"field": self.field, "message": str(self)}]


class InputError(AccrochageError):
    """A file of events cannot be read as one; the message says where, and how to fix it."""

    code = "input_unreadable"
    status = 400


class ConfigError(AccrochageError):
    """A setting is missing or wrong; the message names it."""

    code = "config_error"
    status = 500


class StateLost(ConfigError):
    """No state at `paths.state`, yet its outbox holds files a state wrote: a command that
    would create an empty state, which knows none of those files, refuses to."""

    code = "state_lost"


class SchemaValidationError(AccrochageError):
    """An XML file does not pass the XSD gate."""

    code = "xsd_invalid"
    status = 422


class ReportError(AccrochageError):
    """A CDC processing report cannot be read."""

    code = "report_invalid"
    status = 422


class RenderError(AccrochageError):
    """A batch cannot be rendered within its limits."""

    code = "render_error"
    status = 500


class StoreError(AccrochageError):
    """The state store refused an operation."""

    code = "store_error"
    status = 500
    situation = ""
    """What is wrong and how to fix it, without what was stored: for a writer that waits on
    (the Kafka worker's) or one that stored part of its events (`streams/ingest.py`).
    Empty: the message says nothing of what was stored."""


class StorageFullError(StoreError):
    """The disk holding the state is full, or the state cannot be written (read-only)."""

    code = "storage_full"
    status = 507


class StorageLowError(StorageFullError):
    """Events are refused: the disk holding the state has less free space than
    `state.keep_free_bytes`, kept for what meets the deadlines (batches, reports,
    corrections). The message says how much is free and what to do."""

    code = "storage_low"


class StoreBusyError(StoreError):
    """Another writer kept the state's write lock longer than `state.lock_wait`: nothing was
    stored; the message names that writer."""

    code = "state_busy"
    status = 503


class OutboxMismatch(AccrochageError):
    """The state records a file outside this process's outbox: another process, with
    another `paths.outbox` (or working directory, for a relative one), recorded it there.
    Nothing is moved: moving it would empty the other outbox."""

    code = "outbox_mismatch"
    status = 409


class StateNeedsMigration(StoreError):
    """The state was written by an older accrochage, and this process may not migrate it (it
    only reads, or another version's service serves the state): the message says who does."""

    code = "state_needs_migration"
    status = 503


class StorageCorruptError(StoreError):
    """The state database is damaged: restore it from a backup."""

    code = "storage_corrupt"
    status = 503


class RefdataError(AccrochageError):
    """A reference data file (RNCP/RS export, COG) cannot be read; the message names it."""

    code = "refdata_invalid"
    status = 422


class RefdataBusy(StoreBusyError):
    """Another process is loading reference data into the same state."""

    code = "refdata_busy"


class ServiceTaken(AccrochageError):
    """Another service (`run` or `worker`) runs on this state."""

    code = "service_running"
    status = 409


class WriterUnavailable(AccrochageError):
    """The service's writer process ended: nothing more can be stored until the service
    restarts (no retry helps before)."""

    code = "writer_unavailable"
    status = 503


class NotFound(AccrochageError):
    """What a command or a request names does not exist; the message says where to look."""

    code = "not_found"
    status = 404


class Conflict(AccrochageError):
    """The operation cannot apply to the thing in its current state (closed, already done)."""

    code = "conflict"
    status = 409


def rebuilt(code: str, message: str) -> AccrochageError:
    """An error another process of accrochage raised (its code and message crossed a pipe),
    as its own class here: its code and HTTP status kept. An unknown code: the root class."""
    return _classes_by_code().get(code, AccrochageError)(message)


def _classes_by_code() -> dict[str, type[AccrochageError]]:
    found: dict[str, type[AccrochageError]] = {}
    waiting: list[type[AccrochageError]] = [AccrochageError]
    while waiting:
        cls = waiting.pop()
        if cls.__init__ is AccrochageError.__init__:  # built from a message alone
            found.setdefault(cls.code, cls)
        waiting += cls.__subclasses__()
    return found
