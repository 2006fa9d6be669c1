"""Virtual time for the simulator: batch windows and cache TTLs pass in seconds, not hours."""

from __future__ import annotations

import threading
import time


class VirtualClock:
    """Simulated epoch seconds: wall time sped up by `scale`, plus explicit advances.

    `scale=3600` makes an hour pass every second; `advance()` jumps ahead for tests that
    must not wait at all. Monotone: neither a scale change nor an advance moves it back.
    """

    def __init__(self, scale: float = 1.0, *, start: float | None = None) -> None:
        if scale <= 0:
            raise ValueError("scale: must be > 0")
        self._lock = threading.Lock()
        self._scale = scale
        self._wall0 = time.time()
        self._sim0 = self._wall0 if start is None else start

    def now(self) -> float:
        with self._lock:
            return self._sim0 + (time.time() - self._wall0) * self._scale

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("seconds: cannot move the clock back")
        with self._lock:
            self._sim0 += seconds
            return self._sim0 + (time.time() - self._wall0) * self._scale

    @property
    def scale(self) -> float:
        return self._scale

    def set_scale(self, scale: float) -> None:
        if scale <= 0:
            raise ValueError("scale: must be > 0")
        with self._lock:
            now_wall = time.time()
            self._sim0 = self._sim0 + (now_wall - self._wall0) * self._scale
            self._wall0 = now_wall
            self._scale = scale
