"""A bounded queue with an explicit drop policy, as Holoscan's kPop / kReject and DeepStream's leaky queues.

- ``"oldest"``: when full, the oldest item is discarded to make room (latest frame wins: live cameras).
- ``"newest"``: when full, the incoming item is discarded (what is queued keeps its place).
- ``"block"``: the producer waits for room (files: nothing is ever dropped).

The queue never holds more than ``maxsize`` items; ``high_water`` records the most it ever held.

Example::

    >>> q = DropQueue(2, "oldest")
    >>> for i in range(5):
    ...     q.put(i)
    >>> q.get(0), q.get(0), q.dropped
    (3, 4, 3)
"""

from __future__ import annotations

import collections
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
POLICIES = ("oldest", "newest", "block")


class QueueClosed(Exception):
    """The producer is done and every item has been taken."""


class DropQueue(Generic[T]):
    def __init__(self, maxsize: int, policy: str, *, on_drop: Callable[[T], None] | None = None) -> None:
        if policy not in POLICIES:
            raise ValueError(f"drop policy must be one of {POLICIES}, got {policy!r}")
        if maxsize < 1:
            raise ValueError(f"queue_size must be >= 1, got {maxsize}")
        self.maxsize, self.policy, self.on_drop = maxsize, policy, on_drop
        self._items: collections.deque[T] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self._aborted = False
        self.dropped = 0
        self.high_water = 0

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def put(self, item: T) -> bool:
        """Enqueue ``item`` under the policy; False when it was dropped or the queue is closed.

        ``on_drop`` is called, outside the lock, with the item the policy discarded (if any).
        """
        with self._cond:
            accepted, discarded = self._put(item)
        if discarded is not None and self.on_drop is not None:
            self.on_drop(discarded)
        return accepted

    def _put(self, item: T) -> tuple[bool, T | None]:
        if self._closed or self._aborted:
            return False, None
        discarded = None
        if len(self._items) >= self.maxsize:
            if self.policy == "newest":
                self.dropped += 1
                return False, item
            if self.policy == "oldest":
                discarded = self._items.popleft()
                self.dropped += 1
            else:
                # Wake periodically so that abort() from another thread is never missed.
                while len(self._items) >= self.maxsize and not self._aborted:
                    self._cond.wait(0.1)
                if self._aborted:
                    return False, None
        self._items.append(item)
        self.high_water = max(self.high_water, len(self._items))
        self._cond.notify_all()
        return True, discarded

    def get(self, timeout: float | None = None) -> T:
        """The next item; ``queue.Empty`` after ``timeout`` s, :class:`QueueClosed` once closed and drained."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._items or self._closed or self._aborted, timeout):
                raise queue.Empty
            if self._aborted or not self._items:
                raise QueueClosed
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def __iter__(self) -> Iterator[T]:
        """Every item until the queue is closed and drained, or aborted (a consumer thread's loop)."""
        while True:
            try:
                yield self.get()
            except QueueClosed:
                return

    def close(self) -> None:
        """No more items will come; consumers drain what is left."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def abort(self) -> None:
        """Discard everything and release every waiting producer and consumer (used on errors)."""
        with self._cond:
            self._aborted = True
            self._items.clear()
            self._cond.notify_all()
