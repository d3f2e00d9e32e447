"""The README's configuration table is the one the settings declaration prints (entrypoints/config.py)."""

from pathlib import Path

from entrypoints.config import README_BEGIN, README_END, readme_table

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_the_readme_configuration_table_is_generated_from_the_declaration() -> None:
    """When this fails: python -m entrypoints.config --readme (rewrites the table between the markers)."""
    assert README.count(README_BEGIN) == 1 and README.count(README_END) == 1
    documented = README.split(README_BEGIN + "\n", 1)[1].split(README_END, 1)[0]
    assert documented == readme_table()
