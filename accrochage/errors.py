"""One exception root for everything accrochage raises on purpose.

Messages say what is wrong and how to fix it; callers (CLI, HTTP) turn them into an exit
code or the one JSON error shape without inspecting the text.
"""


class AccrochageError(Exception):
    """Root of every error accrochage raises deliberately."""

    code = "accrochage_error"


class ConfigError(AccrochageError):
    """A setting is missing or wrong; the message names it."""

    code = "config_error"


class SchemaValidationError(AccrochageError):
    """An XML file does not pass the XSD gate."""

    code = "xsd_invalid"


class ReportError(AccrochageError):
    """A CDC processing report cannot be read."""

    code = "report_invalid"


class RenderError(AccrochageError):
    """A batch cannot be rendered within its limits."""

    code = "render_error"


class StoreError(AccrochageError):
    """The state store refused an operation."""

    code = "store_error"
