"""Helpers of the tests that start `sniper` commands as processes."""

from __future__ import annotations

import threading
import time
from typing import IO


class StreamLines:
    """A process's stdout or stderr, line by line, as it comes (a thread reads it)."""

    def __init__(self, stream: IO[str] | None) -> None:
        assert stream is not None, "the stream is not piped"
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for text in stream:
            self.lines.append(text.rstrip("\n"))

    def wait_for(self, needle: str, timeout: float = 20.0) -> int:
        """The index of the first line with `needle` in it, once there is one."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, text in enumerate(self.lines):
                if needle in text:
                    return i
            time.sleep(0.02)
        raise AssertionError(f"{needle!r} not printed in {timeout} s; got:\n" + "\n".join(self.lines))

    def join(self, timeout: float = 30) -> str:
        """Once the process exited: all it wrote (what came within `timeout`)."""
        self._thread.join(timeout=timeout)
        return "\n".join(self.lines)
