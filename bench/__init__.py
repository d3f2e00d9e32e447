"""Latency benchmark: our MEXC snipe path against ccxt's async MEXC client, on the fake
MEXC server on 127.0.0.1 (no network). Run `python -m bench`; see bench/README.md."""
