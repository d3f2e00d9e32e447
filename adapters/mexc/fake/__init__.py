"""Fake MEXC servers on 127.0.0.1 for tests and latency benchmarks: `http` (REST), `ws` (WebSocket)."""
