"""The README's two commands stay true: its test command is CI's, and CI installs what the tests use."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CI = ROOT / ".ci" / "run"


def two_commands_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return text.split("## Two commands", 1)[1].split("\n## ", 1)[0]


def readme_commands() -> list[str]:
    return re.findall(r"```bash\n(.+?)\n```", two_commands_section())


def ci_lines() -> list[str]:
    return [ln.strip() for ln in CI.read_text(encoding="utf-8").splitlines()]


def test_readme_gives_exactly_two_commands() -> None:
    commands = readme_commands()
    assert len(commands) == 2
    assert "streamlit run app.py" in commands[0]
    assert commands[1] == "bash .ci/run"  # the README's test command is CI's, word for word


def test_ci_lints_and_runs_every_test() -> None:
    last = [ln for ln in ci_lines() if ln and not ln.startswith("#")][-1]
    assert "pip install -q -r requirements-dev.txt" in last and "ruff check ." in last
    # no -m, -k or --deselect: the whole suite, on two workers (pytest-xdist, one per core of CI's machine)
    assert last.endswith("python -m pytest -n 2")
    assert "|| true" not in CI.read_text(encoding="utf-8") and "set -euo pipefail" in ci_lines()


def test_ci_installs_every_program_the_tests_look_for() -> None:
    """A test that needs a program fails without it (nothing skips quietly), so CI, which is also the
    README's command for a fresh machine, installs each one that is missing."""
    wanted = set()
    for path in (ROOT / "tests").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        wanted |= set(re.findall(r'shutil\.which\("([\w.-]+)"\)', text))
        wanted |= set(re.findall(r'"/usr/bin/([\w.-]+)"', text))
    assert {"chromium", "prometheus", "promtool", "ss"} <= wanted
    guarded = set(re.findall(r"command -v ([\w.-]+)", CI.read_text(encoding="utf-8")))
    assert wanted <= guarded, f"tests use {sorted(wanted - guarded)}, which .ci/run does not install"


def test_readme_names_each_package_ci_installs() -> None:
    lists = re.findall(r"(?:packages|recommends)\+=\(([^)]*)\)", CI.read_text(encoding="utf-8"))
    packages = {p for found in lists for p in found.split()}
    assert packages == {"python3", "python3-venv", "chromium", "prometheus", "iproute2", "libatomic1"}
    section = two_commands_section()
    assert all(f"`{p}`" in section for p in packages), packages


def test_requirements_files_exist_for_both_commands() -> None:
    commands = [*readme_commands(), CI.read_text(encoding="utf-8")]
    for command in commands:
        for req in re.findall(r"-r (\S+)", command):
            assert (ROOT / req).is_file(), req
