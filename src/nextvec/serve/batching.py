"""Micro-batching: concurrent requests share one model call, run on a worker thread off the event loop."""

from __future__ import annotations

import asyncio
import queue
import threading
from typing import Callable


def _resolve(fut: asyncio.Future, result=None, error: BaseException | None = None) -> None:
    if fut.done():  # the client went away and the request was cancelled
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)


class MicroBatcher:
    """Collects items submitted from async code and runs `fn(list_of_items) -> list_of_results` on one thread.

    Greedy batching: the worker takes the first waiting item plus whatever else is queued at that
    moment (up to `max_batch`), so a lone request pays no waiting time and a burst shares one call.
    """

    def __init__(self, fn: Callable[[list], list], max_batch: int = 32, name: str = "nextvec-batcher",
                 init: Callable[[], None] | None = None):
        self.fn = fn
        self.init = init  # runs first on the worker thread (per-thread settings such as OpenMP's thread count)
        self.max_batch = max_batch
        self._q: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self.batches = 0  # counters for /health and tests
        self.items = 0

    async def submit(self, item):
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._q.put((item, fut, loop))
        return await fut

    def _run(self) -> None:
        if self.init is not None:
            self.init()
        while True:
            first = self._q.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    nxt = self._q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._q.put(None)  # stop after this batch
                    break
                batch.append(nxt)
            try:
                results = self.fn([b[0] for b in batch])
                self.batches += 1
                self.items += len(batch)
                for (_, fut, loop), r in zip(batch, results):
                    loop.call_soon_threadsafe(_resolve, fut, r, None)
            except BaseException as e:  # noqa: BLE001 - hand every error back to its request
                for _, fut, loop in batch:
                    loop.call_soon_threadsafe(_resolve, fut, None, e)

    def close(self) -> None:
        self._q.put(None)
        self._thread.join(timeout=5)
