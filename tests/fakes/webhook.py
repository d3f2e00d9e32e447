"""A webhook receiver on 127.0.0.1 for tests: records each POST (and checks nothing itself);
`delay` makes it hang that long before answering, `status` chooses the answer."""

from __future__ import annotations

from tests.alerts.fake_http import FakeHttpServer

WebhookReceiver = FakeHttpServer

__all__ = ["WebhookReceiver"]
