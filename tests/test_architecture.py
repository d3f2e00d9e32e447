"""The dependency rule, checked on the source: domain imports only the standard library,
application only the standard library and the inner layers; no floats in the domain."""

from __future__ import annotations

import ast
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STDLIB = frozenset(sys.stdlib_module_names)

ALLOWED_OWN = {
    "domain": {"domain"},
    "application": {"domain", "application"},
}


def python_files(layer: str) -> list[Path]:
    return sorted(p for p in (ROOT / layer).rglob("*.py") if "__pycache__" not in p.parts)


def imported_roots(tree: ast.AST, package: str) -> Iterator[tuple[int, str]]:
    """(line, top-level module) for every import; relative imports stay in `package`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                yield node.lineno, package
            elif node.module:
                yield node.lineno, node.module.split(".")[0]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "__import__":
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                yield node.lineno, node.args[0].value.split(".")[0]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value.split(".")[0]


def forbidden_imports(source: str, package: str) -> list[str]:
    allowed_own = ALLOWED_OWN[package]
    tree = ast.parse(source)
    return [
        f"line {line}: imports {root}"
        for line, root in imported_roots(tree, package)
        if root not in STDLIB and root not in allowed_own
    ]


def _annotations(tree: ast.AST) -> Iterator[ast.expr]:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
                if a is not None and a.annotation is not None:
                    yield a.annotation
            if node.returns is not None:
                yield node.returns
        elif isinstance(node, ast.AnnAssign):
            yield node.annotation


def _names_in_annotation(annotation: ast.expr) -> Iterator[str]:
    for node in ast.walk(annotation):
        if isinstance(node, ast.Name):
            yield node.id
        elif isinstance(node, ast.Attribute):
            yield node.attr
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            # A quoted annotation: parse what is inside the quotes.
            try:
                inner = ast.parse(node.value, mode="eval").body
            except SyntaxError:
                continue
            yield from _names_in_annotation(inner)


def float_uses(source: str) -> list[str]:
    tree = ast.parse(source)
    found = [
        f"line {node.lineno}: float(...) call"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "float"
    ]
    found += [
        f"line {annotation.lineno}: float annotation"
        for annotation in _annotations(tree)
        if "float" in set(_names_in_annotation(annotation))
    ]
    return found


# --- the checks against the code ------------------------------------------------------

DOMAIN_FILES = python_files("domain")
APPLICATION_FILES = python_files("application")


def test_the_layers_have_files_to_check() -> None:
    names = {p.name for p in DOMAIN_FILES}
    assert {"values.py", "events.py", "target.py", "position.py"} <= names
    assert any(p.name == "ports.py" for p in APPLICATION_FILES)


@pytest.mark.parametrize("path", DOMAIN_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_domain_imports_only_the_standard_library(path: Path) -> None:
    assert forbidden_imports(path.read_text(encoding="utf-8"), "domain") == []


@pytest.mark.parametrize("path", APPLICATION_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_application_imports_only_stdlib_and_inner_layers(path: Path) -> None:
    assert forbidden_imports(path.read_text(encoding="utf-8"), "application") == []


@pytest.mark.parametrize("path", DOMAIN_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_domain_has_no_floats(path: Path) -> None:
    assert float_uses(path.read_text(encoding="utf-8")) == []


# --- the checker itself catches what it should -----------------------------------------

class TestTheCheckers:
    def test_third_party_and_outer_layers_are_caught(self) -> None:
        source = "\n".join(
            [
                "import httpx",
                "from sqlalchemy.orm import Session",
                "import adapters.memory",
                "from entrypoints import cli",
                "from application.ports import Clock",
                "import msgspec.json",
                "import os, decimal",
                "from __future__ import annotations",
                "from . import sibling",
            ]
        )
        assert forbidden_imports(source, "domain") == [
            "line 1: imports httpx",
            "line 2: imports sqlalchemy",
            "line 3: imports adapters",
            "line 4: imports entrypoints",
            "line 5: imports application",
            "line 6: imports msgspec",
        ]
        assert forbidden_imports(source, "application") == [
            "line 1: imports httpx",
            "line 2: imports sqlalchemy",
            "line 3: imports adapters",
            "line 4: imports entrypoints",
            "line 6: imports msgspec",
        ]

    def test_imports_inside_functions_and_type_checking_blocks_count(self) -> None:
        source = "if False:\n    import redis\ndef f():\n    import litestar\n    __import__('dishka')\n"
        assert forbidden_imports(source, "application") == [
            "line 2: imports redis",
            "line 4: imports litestar",
            "line 5: imports dishka",
        ]

    def test_float_calls_and_annotations_are_caught(self) -> None:
        source = "\n".join(
            [
                "x = float('1.5')",
                "y: float = 1",
                "def f(a: float, b: 'list[float]') -> float | None: ...",
                "def g(*args: float) -> None: ...",
                "isinstance(1, float)",  # a type check refusing floats is fine
            ]
        )
        assert float_uses(source) == [
            "line 1: float(...) call",
            "line 2: float annotation",
            "line 3: float annotation",
            "line 3: float annotation",
            "line 3: float annotation",
            "line 4: float annotation",
        ]


@pytest.mark.parametrize("layer", ["domain", "application", "adapters"])
def test_only_entrypoints_read_the_environment(layer: str) -> None:
    """One config loader (entrypoints/config.py): inner layers get their settings passed in."""
    offenders = []
    for path in python_files(layer):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv") and \
                    isinstance(node.value, ast.Name) and node.value.id == "os":
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


# --- what the installed package and the Docker image hold (issue 17) ---------------------------

SHIPPED = {"domain", "application", "adapters", "entrypoints"}
# In the repository only: the fakes of MEXC, the AI providers, Telegram... live in tests/fakes.
NOT_SHIPPED = {"tests", "bench", "features", "tools"}


def shipped_packages() -> list[str]:
    """What `pip install .` puts in place: pyproject's [tool.setuptools.packages.find], found as setuptools
    finds it (namespace packages unless `namespaces = false`)."""
    from setuptools import find_namespace_packages, find_packages

    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    finder = find_namespace_packages if find.get("namespaces", True) else find_packages
    found = finder(where=str(ROOT), include=find["include"], exclude=find.get("exclude", ()))
    return sorted(p for p in found if "__pycache__" not in p.split("."))


def image_copies() -> set[str]:
    """The source directories docker/Dockerfile copies into the image."""
    copied = set()
    for line in (ROOT / "docker" / "Dockerfile").read_text().splitlines():
        parts = line.split()
        if parts[:1] == ["COPY"] and len(parts) == 3 and (ROOT / parts[1]).is_dir():
            copied.add(parts[1].strip("./"))
    return copied


def unshipped_imports(source: str) -> list[str]:
    return [f"line {line}: imports {root}" for line, root in imported_roots(ast.parse(source), "")
            if root in NOT_SHIPPED]


def test_the_package_and_the_image_hold_the_four_layers_only() -> None:
    assert {p.split(".")[0] for p in shipped_packages()} == SHIPPED
    assert image_copies() == SHIPPED


def test_no_fake_is_shipped() -> None:
    """The fakes are for tests and benchmarks (tests/fakes): none in the installed package or the image."""
    modules = [f"{package}.{path.stem}" for package in shipped_packages()
               for path in (ROOT / package.replace(".", "/")).glob("*.py")]
    assert len(modules) > 100  # the finder found the code
    assert [m for m in modules if "fake" in m.lower()] == []


SHIPPED_FILES = [path for layer in sorted(SHIPPED) for path in python_files(layer)]


@pytest.mark.parametrize("path", SHIPPED_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_code_imports_nothing_left_out_of_the_package(path: Path) -> None:
    """The package works without the repository's tests/, bench/, features/ and tools/."""
    assert unshipped_imports(path.read_text(encoding="utf-8")) == []


def test_imports_of_what_is_not_shipped_are_caught() -> None:
    source = ("from tests.fakes.mexc_http import FakeMexcServer\nimport bench.rig\n"
              "def f():\n    import features.world\n    importlib.import_module('tools.mexc_proto')\n"
              "import adapters.mexc\nfrom testsuite import x\n")
    assert unshipped_imports(source) == ["line 1: imports tests", "line 2: imports bench",
                                         "line 4: imports features", "line 5: imports tools"]
