"""Stage lines with timings for long steps, and a hook the benchmark uses to measure them."""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator, TextIO


@dataclass
class Stages:
    """Prints ``[stage] … 1.2 s`` lines to ``stream`` (stderr by default) and records durations.

    ``on_start``/``on_end`` let a caller (the benchmark) sample memory per stage without the
    pipeline knowing about it.
    """

    stream: TextIO | None = field(default_factory=lambda: sys.stderr)
    seconds: dict[str, float] = field(default_factory=dict)
    on_start: Callable[[str], None] | None = None
    on_end: Callable[[str], None] | None = None

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.say(f"{name} …")
        if self.on_start:
            self.on_start(name)
        start = time.perf_counter()
        yield
        elapsed = time.perf_counter() - start
        self.seconds[name] = self.seconds.get(name, 0.0) + elapsed
        if self.on_end:
            self.on_end(name)
        self.say(f"{name}: done in {elapsed:.1f} s")

    def say(self, message: str) -> None:
        if self.stream is not None:
            print(f"[segments] {message}", file=self.stream, flush=True)

