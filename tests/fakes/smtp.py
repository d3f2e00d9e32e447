"""A fake SMTP server on 127.0.0.1 for tests (aiosmtpd): records every message it is handed.

    with FakeSmtp() as smtp:           # a port of helper range 27000-27099 that is free
        ... SNIPER_SMTP_URL=smtp.url ...
        smtp.messages                  # [ReceivedMail(sender, recipients, subject, body)]
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from dataclasses import dataclass, field
from typing import Any, Self

from aiosmtpd.controller import Controller

HOST = "127.0.0.1"
PORTS = range(27000, 27100)


@dataclass(frozen=True, slots=True)
class ReceivedMail:
    sender: str
    recipients: tuple[str, ...]
    subject: str
    body: str


@dataclass
class FakeSmtp:
    messages: list[ReceivedMail] = field(default_factory=list)
    port: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _controller: Any = None

    @property
    def url(self) -> str:
        return f"smtp://{HOST}:{self.port}"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        part = parsed.get_body(preferencelist=("plain", "html"))
        body = part.get_content() if part is not None else ""
        with self._lock:
            self.messages.append(
                ReceivedMail(envelope.mail_from, tuple(envelope.rcpt_tos), str(parsed["subject"] or ""), body))
        return "250 OK"

    def start(self) -> Self:
        for port in PORTS:
            with socket.socket() as probe:
                try:
                    probe.bind((HOST, port))
                except OSError:
                    continue
            controller = Controller(self, hostname=HOST, port=port)
            try:
                controller.start()
            except Exception:  # noqa: BLE001 - taken between the probe and the start: try the next
                continue
            self._controller, self.port = controller, port
            return self
        raise RuntimeError(f"no free port in {PORTS.start}-{PORTS.stop - 1} for the fake SMTP server")

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def received(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self.messages)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
