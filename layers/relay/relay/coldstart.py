"""Cold-start helpers for the handlers."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collection_paused() -> Iterator[None]:
    """No garbage collection while a handler's init allocates (pydantic schemas, botocore
    models): collections triggered by the allocation alone cost ~50 ms of a cold start
    (bench/bench_ingest.py). What a successful init built lives as long as the sandbox, so
    it is frozen out of later collections."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        gc.freeze()
    finally:
        if was_enabled:
            gc.enable()
