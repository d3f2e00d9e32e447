"""The README documents every environment variable the program reads."""

from pathlib import Path

from entrypoints.config import ENV_VARS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_environment_variable_is_in_the_readme_table() -> None:
    missing = [v.name for v in ENV_VARS if f"| `{v.name}` |" not in README]
    assert missing == []


def test_every_variable_in_the_readme_table_exists() -> None:
    known = {v.name for v in ENV_VARS}
    rows = [line.split("`")[1] for line in README.splitlines() if line.startswith("| `") and line.count("|") >= 4]
    documented = {name for name in rows if name.isupper() and "_" in name}
    assert documented - known == set()
