"""Latency benchmark: our MEXC snipe path against the ccxt script a user would write, on the
project's fake MEXC (no network). Run `python -m bench`; see bench/README.md."""
