"""How many bytes a stream of this process reads at a time from a local file: a cached blob,
or the staging file a fetch is writing (delivery/proxy/fill.py).

The streams of a process share one budget. One pull alone reads 1 MiB at a time; large pieces
make it fast, because each piece is a trip through Django and uvicorn. Fifty pulls read 64 KiB
each, which keeps a web process within its memory. A piece lives on after its read: uvicorn
holds it until the client has taken it, and a stream from a staging file holds one back until
the next piece arrives. So a process holds about twice the budget.

bench/proxy.py with 100 concurrent pulls: an 8 MiB budget peaked at 150-165 MB per process;
2 MiB peaked at 134-140 MB, with the same throughput.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

BUDGET = 2 * 1024 * 1024
SMALLEST, LARGEST = 64 * 1024, 1024 * 1024

_streams = 0  # streams reading local files in this process (one event loop a process)


def size() -> int:
    """The size of the next read, for the streams reading now."""
    return max(SMALLEST, min(LARGEST, BUDGET // max(_streams, 1)))


@contextmanager
def sharing() -> Iterator[None]:
    """Count the enclosed stream among those sharing the budget."""
    global _streams
    _streams += 1
    try:
        yield
    finally:
        _streams -= 1


def streams() -> int:
    return _streams
