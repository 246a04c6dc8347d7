"""The stream's bounded queue: drop policies, and consumers that end when the producer closes."""

from __future__ import annotations

import queue
import threading

import pytest

from sdk.stream.queues import DropQueue, QueueClosed


def test_oldest_keeps_the_latest_and_newest_keeps_what_is_queued() -> None:
    dropped: list[int] = []
    latest = DropQueue(2, "oldest", on_drop=dropped.append)
    kept = DropQueue(2, "newest")
    for i in range(5):
        latest.put(i)
        kept.put(i)
    assert [latest.get(0), latest.get(0)] == [3, 4] and dropped == [0, 1, 2] and latest.dropped == 3
    assert [kept.get(0), kept.get(0)] == [0, 1] and kept.dropped == 3 and kept.high_water == 2
    with pytest.raises(queue.Empty):
        kept.get(0.01)


def test_iteration_drains_then_ends_on_close() -> None:
    q: DropQueue[int] = DropQueue(4, "block")
    seen: list[int] = []
    consumer = threading.Thread(target=lambda: seen.extend(q))
    consumer.start()
    for i in range(10):       # more than maxsize: the producer blocks until the consumer takes items
        q.put(i)
    q.close()
    consumer.join(timeout=5)
    assert not consumer.is_alive() and seen == list(range(10))
    with pytest.raises(QueueClosed):
        q.get(0)


def test_abort_releases_a_waiting_consumer_and_discards_items() -> None:
    q: DropQueue[int] = DropQueue(4, "block")
    started = threading.Event()
    seen: list[int] = []

    def consume() -> None:
        started.set()
        seen.extend(q)

    consumer = threading.Thread(target=consume)
    consumer.start()
    started.wait(5)
    q.abort()
    consumer.join(timeout=5)
    assert not consumer.is_alive() and seen == []
    assert q.put(1) is False and len(q) == 0
