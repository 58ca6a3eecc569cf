"""Real concurrency for PostgreSQL tests: calls started together, each in its own thread and
database connection."""

from __future__ import annotations

import threading

from django.db import connection


def run_at_once(calls) -> list:
    """Start every call at once (a barrier); the results, or the exception each raised."""
    calls = list(calls)
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def worker(index, call):
        try:
            barrier.wait(timeout=30)
            results[index] = call()
        except Exception as exc:  # collected and checked by the test
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return results
