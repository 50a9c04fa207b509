"""Micro-batching: concurrent requests share one model call, run on a worker thread off the event loop."""

from __future__ import annotations

import asyncio
import queue
import threading
from typing import Callable


def _resolve_all(done: list, error: BaseException | None) -> None:
    for fut, result in done:
        if fut.done():  # the client went away and the request was cancelled
            continue
        if error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(result)


class MicroBatcher:
    """Collects items submitted from async code and runs `fn(list_of_items) -> list_of_results` on one thread.

    Greedy batching with no added wait: requests submitted during one pass of the event loop (the ones
    whose bytes arrived together) are handed over as one group when the pass ends, and the worker takes
    the first waiting group plus whatever else is queued at that moment (up to `max_batch` items). A lone
    request pays no waiting time; a burst shares one call.
    """

    def __init__(self, fn: Callable[[list], list], max_batch: int = 32, name: str = "nextvec-batcher",
                 init: Callable[[], None] | None = None):
        self.fn = fn
        self.init = init  # runs first on the worker thread (per-thread settings such as OpenMP's thread count)
        self.max_batch = max_batch
        self._q: queue.Queue = queue.Queue()
        self._pending: list = []  # submitted in the current event-loop pass, not yet handed to the worker
        self._pending_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self.batches = 0  # counters for /health and tests
        self.items = 0

    async def submit(self, item):
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        with self._pending_lock:
            self._pending.append((item, fut, loop))
            first = len(self._pending) == 1
        if first:
            loop.call_soon(self._flush)  # runs after the callbacks already ready in this pass
        return await fut

    def _flush(self) -> None:
        with self._pending_lock:
            group, self._pending = self._pending, []
        if group:
            self._q.put(group)

    def _run(self) -> None:
        if self.init is not None:
            self.init()
        waiting, stop = [], False  # items taken off the queue, not yet run
        while waiting or not stop:
            if not waiting:
                group = self._q.get()
                if group is None:
                    return
                waiting.extend(group)
            while len(waiting) < self.max_batch:  # whatever else is queued right now
                try:
                    group = self._q.get_nowait()
                except queue.Empty:
                    break
                if group is None:
                    stop = True  # finish what was submitted, then stop
                    break
                waiting.extend(group)
            batch, waiting = waiting[: self.max_batch], waiting[self.max_batch :]
            self._call(batch)

    def _call(self, batch: list) -> None:
        try:
            results, error = self.fn([b[0] for b in batch]), None
            self.batches += 1
            self.items += len(batch)
        except BaseException as e:  # noqa: BLE001 - hand every error back to its request
            results, error = [None] * len(batch), e
        by_loop: dict = {}  # one wake-up per event loop, not one per request
        for (_, fut, loop), r in zip(batch, results):
            by_loop.setdefault(loop, []).append((fut, r))
        for loop, done in by_loop.items():
            loop.call_soon_threadsafe(_resolve_all, done, error)

    def close(self) -> None:
        self._q.put(None)
        self._thread.join(timeout=5)
