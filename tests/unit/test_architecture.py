"""The house's arrows (docs/architecture.md), read from the code's own imports.

Each part of `accrochage` may import only the parts below it; a few libraries belong to one
part each; SQL is written only under `state/`. A forbidden arrow fails here, naming the file
and the import, before it can settle in.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "accrochage"

LAYERS: list[set[str]] = [
    {"errors", "lifeline", "failpoints", "processes", "heap", "private_files"},
    {"helper_main"},
    {"pool"},
    {"models"},
    {"settings", "generate"},
    {"state"},
    {"sinks", "refdata"},
    {"streams"},
    {"api"},
    {"app"},
    {"app_writers"},
    {"runtimes"},
    {"commands"},
    {"cli"},
    {"launch"},
    {"__main__"},
]
"""From the ground up. A part imports its own modules and those of the layers below it."""

LIBRARIES = {
    "sqlite3": ("state",),
    "sqlite_utils": ("state",),
    "sqlite_migrate": ("state",),
    "lxml": ("sinks", "refdata"),
    "faust": ("runtimes.kafka",),
    "mode": ("runtimes.kafka",),
    "aiokafka": ("runtimes.kafka",),
    "aiohttp": ("api", "runtimes"),
    "click": ("cli", "commands"),
}
"""Each library and the parts that may import it."""

SQL = re.compile(
    r"\b(SELECT\s.+\sFROM|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM"
    r"|CREATE\s+(UNIQUE\s+)?(TABLE|INDEX)|BEGIN\s+IMMEDIATE|PRAGMA)\b",
    re.IGNORECASE | re.DOTALL,
)


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


@cache
def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), str(path))


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """Every module imported anywhere in the file (inside functions too), absolute: a
    relative import (`from ..state import x`) is resolved from the file's own package."""
    for node in ast.walk(tree(path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(path, node.module, node.level)
            if module:
                yield node.lineno, module
                for alias in node.names:
                    yield node.lineno, f"{module}.{alias.name}"


def _absolute(path: Path, module: str | None, level: int) -> str:
    if level == 0:
        return module or ""
    package = ("accrochage", *path.relative_to(PACKAGE).parent.parts)
    base = package[: len(package) - (level - 1)]
    return ".".join((*base, module) if module else base)


def part(module: str) -> str:
    return module.split(".")[0] if module else ""


def layer(name: str) -> int:
    for index, names in enumerate(LAYERS):
        if name in names:
            return index
    raise AssertionError(f"accrochage.{name} is in no layer: add it to LAYERS and the docs")


def project_imports(path: Path) -> Iterator[tuple[int, str]]:
    for line, name in imports(path):
        if name.startswith("accrochage."):
            target = name.removeprefix("accrochage.")
            if _is_module(target):
                yield line, target


@cache
def _is_module(dotted: str) -> bool:
    base = PACKAGE.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def test_every_part_has_a_layer() -> None:
    for module, _ in modules():
        if module:
            layer(part(module))


def test_each_part_imports_only_parts_below_it() -> None:
    wrong = []
    for module, path in modules():
        if not module:
            continue
        mine = part(module)
        for line, target in project_imports(path):
            theirs = part(target)
            if theirs != mine and layer(theirs) >= layer(mine):
                wrong.append(
                    f"{path.relative_to(PACKAGE.parent)}:{line} imports accrochage.{target}"
                )
    assert not wrong, "arrows that run up or sideways:\n" + "\n".join(wrong)


def test_models_import_nothing_of_the_project_but_errors() -> None:
    wrong = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports accrochage.{target}"
        for module, path in modules()
        if part(module) == "models"
        for line, target in project_imports(path)
        if part(target) not in ("models", "errors")
    ]
    assert not wrong, "\n".join(wrong)


def test_streams_know_no_runtime_no_http_no_command_line() -> None:
    forbidden = ("app", "app_writers", "api", "runtimes", "commands", "cli")
    wrong = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports accrochage.{target}"
        for module, path in modules()
        if part(module) == "streams"
        for line, target in project_imports(path)
        if part(target) in forbidden
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("library", sorted(LIBRARIES))
def test_a_library_belongs_to_its_parts(library: str) -> None:
    allowed = LIBRARIES[library]
    wrong = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}"
        for module, path in modules()
        for line, name in imports(path)
        if name.split(".")[0] == library
        and not any(module == a or module.startswith(a + ".") for a in allowed)
    ]
    assert not wrong, f"{library} is for {', '.join(allowed)} only:\n" + "\n".join(wrong)


def test_sql_is_written_only_under_state() -> None:
    wrong = []
    for module, path in modules():
        if part(module) == "state":
            continue
        for node in ast.walk(tree(path)):
            text = node.value if isinstance(node, ast.Constant) else None
            if isinstance(text, str) and SQL.search(text):
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert not wrong, "SQL outside accrochage/state/:\n" + "\n".join(wrong)


def test_the_sql_detector_sees_sql() -> None:
    assert SQL.search("SELECT record_id FROM records WHERE x = ?")
    assert SQL.search("INSERT OR REPLACE INTO records (a) VALUES (?)")
    assert SQL.search("UPDATE batches SET state = ?")
    assert not SQL.search("select the batches that are due")


def test_no_module_cycle() -> None:
    graph = {
        module: {target for _, target in project_imports(path) if target != module}
        for module, path in modules()
    }
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_the_checker_sees_a_forbidden_arrow(tmp_path: Path) -> None:
    """The rules are not vacuous: a model importing the store would be caught."""
    fake = tmp_path / "bad.py"
    fake.write_text("from accrochage.state.base import Store\nimport lxml.etree\n")
    names = [name for _, name in imports(fake)]
    assert "accrochage.state.base" in names and "lxml.etree" in names
    assert layer(part("state.base")) > layer(part("models.event"))


CONCRETE = ("state.sqlite", "sinks.xml_outbox")
"""The store and the sink of today: the composition root (`app`) chooses them, everything
else speaks to `state.base` and `sinks.base`, so another store or sink changes `app` only."""
COMPOSITION_ROOT = ("app", "app_writers")
"""The main process's parts (`app`) and what a writer process builds for itself."""


def test_only_the_composition_root_names_the_concrete_store_and_sink() -> None:
    wrong = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports accrochage.{target}"
        for module, path in modules()
        if module not in COMPOSITION_ROOT
        for line, target in project_imports(path)
        for concrete in CONCRETE
        if (target == concrete or target.startswith(concrete + "."))
        and not (module == concrete or module.startswith(concrete + "."))
    ]
    assert not wrong, "\n".join(wrong)


def test_a_relative_import_is_read_as_the_module_it_names() -> None:
    streams = PACKAGE / "streams" / "flush.py"
    assert _absolute(streams, "state.sqlite", 2) == "accrochage.state.sqlite"
    assert _absolute(streams, "writer", 1) == "accrochage.streams.writer"
    assert _absolute(PACKAGE / "app.py", None, 1) == "accrochage"
