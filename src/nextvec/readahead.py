"""Background read-ahead: run `load` over items in a daemon thread, a bounded number of items ahead.

Used where reading (Parquet decoding, gathering store rows) can overlap the consumer's work: pyarrow and
numpy release the GIL for the heavy parts, so on two cores the read and the consumer run side by side.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Iterable, Iterator

_END = object()


class ReadAhead:
    """Iterate to get `load(item)` for each item of `items`, in order, computed up to `ahead` items early.

    An exception in the thread is raised in the consumer at the point it happened; `stop()` ends the thread
    early (a consumer that leaves before the end must call it)."""

    def __init__(self, items: Iterable, load: Callable = lambda x: x, ahead: int = 2):
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, ahead))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(items, load), daemon=True)
        self._thread.start()

    def _run(self, items, load) -> None:
        try:
            for item in items:
                if not self._put(load(item)):
                    return
            self._put(_END)
        except BaseException as e:  # handed to the consumer, raised there
            self._put(e)

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator:
        return self

    def __next__(self):
        item = self._queue.get()
        if item is _END:
            self._queue.put(_END)  # later calls see the end too
            raise StopIteration
        if isinstance(item, BaseException):
            raise item
        return item

    def stop(self) -> None:
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass
