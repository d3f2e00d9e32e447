"""MEXC spot adapters.

REST trading and market data: `rest.MexcRestClient` (one pooled keep-alive httpx client,
plus `lane.OrderLane`, a lean HTTP/1.1 connection for the order POST and the clock sync;
signing, clock offset, rate limits, classified errors) and `exchange.MexcExchange` (the
ExchangeTrading and MarketData ports on top of it). Listings: `listings`. WebSocket
streams: `streams` with `protobuf`. The fakes of MEXC that the tests and benchmarks run against are
not part of the package: tests/fakes/mexc_http.py and tests/fakes/mexc_ws.py.
"""
