"""The open benchmark's harness keeps working: one round each, no hogs, every party in its own
process (the fake exchange, `sniper snipe --live`, the ccxt script). No timing is asserted."""

from __future__ import annotations

import pytest


def test_both_clients_land_an_order_and_the_report_has_every_figure() -> None:
    # Imported here, not at collection: ccxt (every exchange it has, ~0.4 s) would load in each pytest process.
    pytest.importorskip("ccxt")  # the bench extra
    from bench import open as open_bench

    bench = open_bench.run(rounds=1, hogs_count=0, lead=1.0, progress=False, warmup=False, tries=1)

    assert [(r.client, r.landed) for r in bench.results] == [(open_bench.OURS, True), (open_bench.CCXT, True)]
    assert all(r.exit_code == 0 for r in bench.results), [r.detail for r in bench.results]
    for r in bench.results:
        assert r.outcomes.count("accepted") == 1  # one buy each, nothing bought twice
        assert r.refused(open_bench.SIGNATURE_OR_TIMESTAMP) == 0
    report = open_bench.report(bench)
    for column in ("median", "p90", "p99", "max", "orders/round", "10007/round", "sig/ts", "429"):
        assert column in report
    assert "quiet     ours" in report and "quiet     ccxt" in report
    assert "FAILED" not in report
