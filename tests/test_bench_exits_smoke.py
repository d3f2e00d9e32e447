"""The exits benchmark's harness keeps working (python -m bench exits): one stop-loss per path,
the fake exchange in its own process, the worker's exit path here. No timing is asserted."""

from __future__ import annotations

import math

from bench import exits


def test_every_path_sells_and_is_reported() -> None:
    results = exits.run(samples=1, hogs=0, seed=1, spread=0.05)
    assert list(results) == [exits.WEBSOCKET, exits.REST_YOUNG, exits.REST_OLD]
    for summary in results.values():
        assert summary.n == 1
        assert math.isfinite(summary.median) and summary.median > 0


def test_bad_arguments_are_one_line_and_exit_2(capsys) -> None:  # noqa: ANN001
    assert exits.main(["--samples", "0"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
