"""Worlds: a study built once for a module (or a class) of tests, not once per test.

``built_once`` opens a transaction (a savepoint when a world is already open) that stays open
until the fixture's scope ends and is then rolled back. Each test's own ``django_db``
transaction is a savepoint inside it: what a test writes goes with its savepoint, and the next
test finds the world as it was built. pytest-django runs the transactional tests after the
others; they commit from other connections, so ``close_worlds`` ends the worlds still open
before they start.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest
from django.db import transaction

_open: list[ExitStack] = []


@contextmanager
def built_once(django_db_blocker) -> Iterator[None]:
    """Build the world inside this block (in a module- or class-scoped fixture) and yield it."""
    with ExitStack() as stack:
        stack.enter_context(django_db_blocker.unblock())
        stack.enter_context(transaction.atomic())
        stack.callback(transaction.set_rollback, True)
        _open.append(stack)
        try:
            yield
        finally:
            if stack in _open:
                _open.remove(stack)


def close_worlds() -> None:
    """Roll back the worlds still open, the last opened first."""
    while _open:
        _open.pop().close()


def fresh(record):
    """``record`` as the database holds it now: a world's objects are shared by its tests, and
    a test may have changed one in memory."""
    return type(record).objects.get(pk=record.pk)


def taken_from_world(*names: str) -> tuple:
    """Fixtures named like the conftest's people (``site``, ``coordinator``...) that give the
    module's ``world`` attribute of that name, fresh for each test: the conftest's would be a
    second site 101 beside the world's."""

    def fixture_of(name: str):
        @pytest.fixture(name=name)
        def from_the_world(world):
            return fresh(getattr(world, name))

        return from_the_world

    return tuple(fixture_of(name) for name in names)
