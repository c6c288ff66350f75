"""A Keras-style progress bar: ``12/40 ━━━━━━━━━━━━━━━━━━━━ 3s 80ms/step - acc: 0.91 - loss: 0.27``.

verbose=0: silent.  verbose=1: a live bar on a terminal; when stdout is not a terminal
(a log file, CI) only the final line is printed, so logs hold no bar spam.
verbose=2: one line per epoch.
"""
from __future__ import annotations

import sys
import time


def _format_duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
    if seconds >= 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    return f"{int(round(seconds))}s"


def _format_step(seconds: float) -> str:
    return f"{seconds * 1000:.0f}ms/step" if seconds < 1 else f"{seconds:.1f}s/step"


def format_values(values: dict) -> str:
    return " - ".join(f"{k}: {v:.4f}" for k, v in values.items())


class Progbar:
    width = 20

    def __init__(self, target: int, verbose: int = 1, stream=None):
        self.target = target
        self.verbose = verbose
        self.stream = stream or sys.stdout
        self.live = verbose == 1 and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.perf_counter()
        self._last_draw = 0.0

    def _line(self, current: int, values: dict, final: bool) -> str:
        elapsed = time.perf_counter() - self.start
        filled = int(self.width * current / max(self.target, 1))
        bar = "━" * filled + "─" * (self.width - filled)
        per_step = elapsed / max(current, 1)
        timing = (f"{_format_duration(elapsed)} {_format_step(per_step)}" if final
                  else f"{_format_duration(per_step * (self.target - current))} ETA")
        text = f"{current}/{self.target} {bar} {timing}"
        return text + (f" - {format_values(values)}" if values else "")

    def update(self, current: int, values: dict | None = None) -> None:
        """Draw step ``current`` of ``target`` (throttled to 20 redraws a second)."""
        if not self.live or current >= self.target:
            return
        now = time.perf_counter()
        if now - self._last_draw < 0.05:
            return
        self._last_draw = now
        self.stream.write("\r" + self._line(current, values or {}, False) + "\x1b[K")
        self.stream.flush()

    def finish(self, values: dict | None = None) -> None:
        if self.verbose == 0:
            return
        prefix = "\r" if self.live else ""
        self.stream.write(prefix + self._line(self.target, values or {}, True) + ("\x1b[K" if self.live else "") + "\n")
        self.stream.flush()
