"""scripts/bootstrap.sh: the README's first step on a machine whose `python3` is too old."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import ROOT


def test_an_older_python_is_refused_before_any_virtualenv_is_made(tmp_path: Path) -> None:
    """Ubuntu 22.04's python3 is 3.10: a 3.10 `.venv` was made, the install failed, and
    `PYTHON=python3.11` did not help (the existing `.venv` was kept)."""
    fake = tmp_path / "python3.10"
    fake.write_text(
        '#!/bin/sh\nif [ "$1" = "--version" ]; then echo "Python 3.10.13"; exit 0; fi\nexit 1\n',
        encoding="utf-8",
    )
    fake.chmod(0o755)
    venv = ROOT / ".venv"
    before = venv.stat().st_mtime_ns if venv.exists() else None
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "bootstrap.sh")],
        env={**os.environ, "PYTHON": str(fake)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert f"accrochage needs Python 3.11 or later; {fake} is Python 3.10.13" in done.stderr
    assert "PYTHON=python3.11 bash" in done.stderr
    assert (venv.stat().st_mtime_ns if venv.exists() else None) == before


def test_every_dependency_is_installed_at_the_version_the_suite_passed_with() -> None:
    """`pip install .` took whatever was current: a rebuild of the image, or a fresh
    machine, could run versions no test ever ran."""
    import re
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    names = {re.split(r"[\[<>=!~ ;]", d, maxsplit=1)[0].lower().replace("_", "-") for d in wanted}
    pinned = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"{line}: pinned with =="
            pinned[name.lower().replace("_", "-")] = version
    assert names <= set(pinned), sorted(names - set(pinned))
    assert "accrochage" not in pinned
    for script in ("scripts/bootstrap.sh", "Dockerfile"):
        assert "-c constraints.txt" in (ROOT / script).read_text(encoding="utf-8"), script


FAKE_PYTHON = """#!/bin/sh
# Stands for python3 and the .venv's python: says it is 3.11, makes a .venv of itself, and
# logs every other call (the pip installs) to $LOG.
if [ "$1" = "-c" ]; then case "$2" in *print*) echo 3.11;; esac; exit 0; fi
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then mkdir -p "$3/bin"; cp "$0" "$3/bin/python"; exit 0; fi
echo "$*" >> "$LOG"
"""


def bootstrap_in_copy(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], str]:
    """scripts/bootstrap.sh run in a copy of the checkout, with a Python that installs nothing."""
    (tmp_path / "scripts").mkdir()
    script = tmp_path / "scripts" / "bootstrap.sh"
    script.write_bytes((ROOT / "scripts" / "bootstrap.sh").read_bytes())
    (tmp_path / "constraints.txt").write_bytes((ROOT / "constraints.txt").read_bytes())
    fake = tmp_path / "python3"
    fake.write_text(FAKE_PYTHON, encoding="utf-8")
    fake.chmod(0o755)
    log = tmp_path / "calls"
    done = subprocess.run(
        ["bash", str(script), *args],
        env={**os.environ, "PYTHON": str(fake), "LOG": str(log)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done, log.read_text(encoding="utf-8") if log.exists() else ""


def test_the_default_install_is_editable_with_the_dev_tools(tmp_path: Path) -> None:
    done, calls = bootstrap_in_copy(tmp_path)
    assert done.returncode == 0, done.stderr
    assert calls.splitlines()[-1] == "-m pip install --quiet -c constraints.txt -e .[dev]"


def test_a_production_install_has_no_dev_tools_and_is_not_editable(tmp_path: Path) -> None:
    """A service's machine needs neither pytest nor mypy, nor the checkout as it is edited."""
    done, calls = bootstrap_in_copy(tmp_path, "--production")
    assert done.returncode == 0, done.stderr
    assert calls.splitlines()[-1] == "-m pip install --quiet -c constraints.txt ."


def test_an_unknown_option_is_refused_before_anything_is_made(tmp_path: Path) -> None:
    done, calls = bootstrap_in_copy(tmp_path, "--prod")
    assert done.returncode == 2
    assert "unknown option: --prod" in done.stderr and "--production" in done.stderr
    assert calls == "" and not (tmp_path / ".venv").exists()


def test_a_virtualenv_left_without_pip_is_made_again(tmp_path: Path) -> None:
    """Debian's `python3 -m venv` without python3-venv leaves `.venv/bin/python` and no pip:
    once python3-venv was installed, bootstrap kept that `.venv` and failed on "No module
    named pip" at every run."""
    half = tmp_path / ".venv" / "bin" / "python"
    half.parent.mkdir(parents=True)
    half.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "-c" ]; then case "$2" in *print*) echo 3.11;; esac; exit 0; fi\n'
        'echo "No module named pip" >&2; exit 1\n',
        encoding="utf-8",
    )
    half.chmod(0o755)
    done, calls = bootstrap_in_copy(tmp_path)
    assert done.returncode == 0, done.stderr
    assert "recreating .venv: it has no pip" in done.stderr
    assert calls.splitlines()[-1] == "-m pip install --quiet -c constraints.txt -e .[dev]"
