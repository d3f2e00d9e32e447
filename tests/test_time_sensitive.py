"""tests/time_sensitive.txt lists every test module that reads the wall clock, directly or through
a test helper, a fake exchange or a process it starts: the modules the README runs under
`faketime '+400 days'` (and later) to show that no test depends on today's date. A module that
starts reading the wall clock must be added to the list, or it escapes that check."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LISTED = ROOT / "tests" / "time_sensitive.txt"

# What reads the wall clock: the clock itself, the system clock adapters, the fakes of MEXC
# (their server time is the wall clock), and processes (workers, the CLI, servers) that run on it.
WALL_CLOCK = (
    "datetime.now(", "datetime.utcnow(", "date.today(", "time.time(", "time.time_ns(",
    "SystemClock(", "AcceleratedClock(", "FakeMexcServer(", "FakeMexcWebSocketServer(",
    "subprocess", "entrypoints.cli",
)


def listed() -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in LISTED.read_text().splitlines())
    return [line for line in lines if line]


def _local_imports(path: Path) -> list[Path]:
    """The modules of this repository's tests and features that `path` imports."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else []
        for name in names:
            if name.split(".")[0] in {"tests", "features"}:
                module = ROOT / Path(*name.split("."))
                found += [p for p in (module.with_suffix(".py"), module / "__init__.py") if p.is_file()]
    return found


def reads_the_wall_clock(path: Path, seen: set[Path] | None = None) -> bool:
    seen = set() if seen is None else seen
    if path in seen:
        return False
    seen.add(path)
    if _marked(path):
        return True
    # The fixtures of its directory's conftest (not what that conftest imports for other tests).
    conftest = path.parent / "conftest.py"
    return (conftest.is_file() and _marked(conftest)) or any(
        reads_the_wall_clock(p, seen) for p in _local_imports(path)
    )


def _marked(path: Path) -> bool:
    return any(mark in path.read_text() for mark in WALL_CLOCK)


def test_every_module_that_reads_the_wall_clock_is_listed() -> None:
    modules = sorted([*ROOT.glob("tests/**/test_*.py"), *ROOT.glob("features/test_*.py")])
    assert len(modules) > 50
    missing = [str(p.relative_to(ROOT)) for p in modules if reads_the_wall_clock(p)]
    missing = [m for m in missing if m not in set(listed())]
    assert missing == [], f"add to tests/time_sensitive.txt: {missing}"


def test_every_listed_module_exists() -> None:
    assert [m for m in listed() if not (ROOT / m).is_file()] == []
