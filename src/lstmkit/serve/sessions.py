"""Streaming sessions: one ``predictor.stream()`` per session, closed when idle too long.

A stream (the protocol, see :func:`lstmkit.serve.app.create_app`) has ``step(inputs) -> outputs``
(JSON-able in and out) and optionally ``close()``. The store keeps at most ``max_sessions`` open;
a session unused for ``ttl`` seconds is closed, by the sweeper or when next looked up.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class SessionLimit(Exception):
    """``max_sessions`` are open: the server answers 429."""


@dataclass
class Session:
    stream: Any
    used: float  # the clock when last stepped
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one step at a time per session


class SessionStore:
    """Open sessions by id; ``clock`` is injectable for tests."""

    def __init__(self, ttl: float, max_sessions: int, clock: Callable[[], float] = time.monotonic):
        self.ttl, self.max_sessions, self.clock = ttl, max_sessions, clock
        self.sessions: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self.sessions)

    def reserve(self) -> None:
        """Raise :class:`SessionLimit` when no session can be opened now (expired ones are closed first)."""
        self.sweep()
        if len(self.sessions) >= self.max_sessions:
            raise SessionLimit(f"{self.max_sessions} sessions are open (--max-sessions); close one or try later")

    def open(self, stream: Any) -> str:
        """Register a new stream; its id (URL-safe, unguessable)."""
        self.reserve()
        sid = secrets.token_urlsafe(16)
        self.sessions[sid] = Session(stream, self.clock())
        return sid

    def get(self, sid: str) -> Session:
        """The open session ``sid``, its idle time reset; KeyError when unknown or expired."""
        session = self.sessions[sid]
        now = self.clock()
        if now - session.used > self.ttl:
            self.close(sid)
            raise KeyError(sid)
        session.used = now
        return session

    def close(self, sid: str) -> bool:
        """Close ``sid`` (its stream's ``close()`` when it has one); whether it was open."""
        session = self.sessions.pop(sid, None)
        if session is None:
            return False
        close = getattr(session.stream, "close", None)
        if callable(close):
            close()
        return True

    def sweep(self) -> int:
        """Close every session idle for more than ``ttl``; how many."""
        now = self.clock()
        expired = [sid for sid, s in self.sessions.items() if now - s.used > self.ttl and not s.lock.locked()]
        for sid in expired:
            self.close(sid)
        return len(expired)

    def close_all(self) -> None:
        for sid in list(self.sessions):
            self.close(sid)

    async def sweeper(self) -> None:
        """Sweep every ``min(ttl / 2, 30)`` seconds, forever (cancelled at shutdown)."""
        while True:
            await asyncio.sleep(min(self.ttl / 2, 30.0))
            self.sweep()
