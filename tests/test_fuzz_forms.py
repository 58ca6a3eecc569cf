"""Malformed posts to every web form: never a 500, and nothing saved when the answer is an error.

The form pages are found from the URLconf (the isolation matrix's cases: every URL filled with a
site's records); a page is a form page when the user who may write there gets a
``<form method="post">`` with something to fill in: the site's investigator or a data manager
(site pages), a data manager or a superuser (admin pages only superusers change). Each form, as
that user offers it, is posted again with malformed values: overlong strings, wrong types,
impossible dates (2026-02-30), dates and date-times at and past the ends of what Python and the
database hold (year 1, 31 Dec 9999, year 10000), out-of-range and huge numbers, unicode junk, nul
bytes, several values for one field, missing and extra fields. Seeded: the same posts every run.
Besides the random posts, every date or date-time field of every form gets each extreme date in
turn, the rest of the form as offered: a date is shifted by windows, ages and clocks once the
field accepts it, and that arithmetic must refuse it with a sentence, not overflow. Each post runs
in a savepoint rolled back afterwards.
"""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest
from django.db import transaction
from django.test import Client

from core.roles import Role

from .builders import make_user
from .builders.forms import post_forms
from .builders.worlds import built_once
from .test_isolation_matrix import (
    _body,
    build_world,
    checksums,
    generate_cases,
    quick_requests,
    watched_tables,
    written,
)

SEED = 20261129
POSTS_PER_FORM = 7
NOT_MUTATED = {"csrfmiddlewaretoken"}

JUNK = [
    "x" * 5000,  # overlong
    "abc",  # a word where a number or a date goes
    "2026-02-30",  # no such day
    "2026-13-01",
    "31/12/2026",
    "-1",
    "99999999999999999999999999999999",  # a huge integer
    "1e309",
    "NaN",
    "0x1F",
    "１２",  # full-width digits
    "\u202e\u200b\ufeff𝔘𝔫𝔦𝔠𝔬𝔡𝔢 💥",  # unicode junk
    "a\x00b",  # a nul byte
    "\x00",
    "2026-01-01\x00",
    "0001-01-01",  # the first and last days Python and the database hold, and past them
    "9999-12-31",
    "10000-01-01",
    "0001-01-01T00:00",
    "9999-12-31T23:59",
    "10000-01-01T00:00",
    " ",
    "<script>alert(1)</script>",
    "true",
    ["1", "2"],  # two values for one field
]


def mutations(fields: list[str], valid: dict, rng: random.Random) -> list[dict]:
    """The malformed posts of one form (``valid``: the form as offered)."""
    posts = [{}, {**valid, "unexpected_field": "x" * 300, "id": "1; DROP TABLE x"}]
    mutable = [f for f in fields if f not in NOT_MUTATED]
    csrf = {k: v for k, v in valid.items() if k in NOT_MUTATED}
    posts.append({**csrf, **{name: rng.choice(JUNK) for name in mutable}})  # everything junk
    while len(posts) < POSTS_PER_FORM and mutable:
        post = dict(valid)
        for name in rng.sample(mutable, min(len(mutable), rng.randint(1, 3))):
            if rng.random() < 0.15:
                post.pop(name, None)  # missing
            else:
                post[name] = rng.choice(JUNK)
        posts.append(post)
    return posts


# Each in turn in every date or date-time field (the admin's split date-time: its date part).
EXTREME_DATES = {
    "date": ["0001-01-01", "9999-12-31", "10000-01-01"],
    "datetime-local": ["0001-01-01T00:00", "9999-12-31T23:59", "10000-01-01T00:00"],
}


def date_kind(name: str, kind: str, fields: list[str]) -> str | None:
    """ "date", "datetime-local" or None: the date inputs, the admin's text date inputs (named
    after the date) and the date part of its split date-times (``<name>_0`` beside ``_1``)."""
    if kind in EXTREME_DATES:
        return kind
    if kind == "text" and ("date" in name or (name.endswith("_0") and f"{name[:-2]}_1" in fields)):
        return "date"
    return None


def extreme_dates(kinds: dict[str, str], valid: dict) -> list[dict]:
    """The form as offered with one date field at an extreme date, for each field and date."""
    return [{**valid, name: value} for name, kind in kinds.items() for value in EXTREME_DATES[kind]]


ERROR_MARKS = re.compile(r'class="[^"]*\b(errorlist|errornote|error)\b')


def looks_like_error(status: int, body: str) -> bool:
    return status >= 400 or (status == 200 and bool(ERROR_MARKS.search(body)))


def _writable(form) -> bool:
    """A form with something to fill in (a read-only admin page has a form with its token only)."""
    return any(f.kind not in ("hidden", "submit", "button") for f in form.fields)


@pytest.fixture(scope="module")
def form_pages(django_db_setup, django_db_blocker):
    """(path, user, the form's fields, the form as offered) of every form page, with a study to
    write in (built once, rolled back at the module's end)."""
    with built_once(django_db_blocker), quick_requests():
        world = build_world()
        cases, _ = generate_cases(world)
        clients = {}
        for name, user in (
            ("site", world.writer),
            ("data manager", make_user(Role.DATA_MANAGER, is_staff=True)),
            ("superuser", world.superuser),
        ):
            client = Client(raise_request_exception=False)
            client.force_login(user)
            clients[name] = (user, client)
        pages, seen = [], set()
        for case in cases:  # one URL per route (a route's other records: the same form)
            key = case.route if not case.query else case.url
            if case.path.startswith("/api/") or key in seen:
                continue
            seen.add(key)
            order = ("site", "data manager")
            if case.path.startswith("/admin/"):
                order = ("data manager", "superuser")
            for user, client in (clients[name] for name in order):
                with transaction.atomic():
                    response = client.get(case.url)
                    html = _body(response) if response.status_code == 200 else ""
                    transaction.set_rollback(True)
                client.cookies.pop("messages", None)
                forms = [f for f in post_forms(html) if _writable(f)]
                if forms:
                    own = [f for f in forms if f.action in ("", case.path)] or forms
                    form = max(own, key=lambda f: len(f.fields))  # the page's main form
                    fields = list(dict.fromkeys(f.name for f in form.fields))
                    kinds = {
                        f.name: kind
                        for f in form.fields
                        if (kind := date_kind(f.name, f.kind, fields))
                    }
                    pages.append((case.url, user, fields, kinds, form.data()))
                    break
        yield pages


@pytest.mark.postgres
@pytest.mark.django_db
def test_malformed_posts_to_every_form(form_pages):
    assert len(form_pages) >= 20, [path for path, *_ in form_pages]
    tables = watched_tables()
    baseline = checksums(tables)
    failures, posted, statuses = [], 0, Counter()
    dated = [path for path, _, _, kinds, _ in form_pages if kinds]
    assert len(dated) >= 20, dated
    clients: dict[int, Client] = {}
    for path, user, fields, kinds, valid in form_pages:
        if (client := clients.get(user.pk)) is None:
            client = clients[user.pk] = Client(raise_request_exception=False)
            client.force_login(user)
        rng = random.Random(f"{SEED}:{path}")
        for data in [*mutations(fields, valid, rng), *extreme_dates(kinds, valid)]:
            posted += 1
            with transaction.atomic():
                before = written(tables)
                response = client.post(path, data)
                status, body = response.status_code, _body(response)
                statuses[status] += 1
                suspects = [t for t, n in written(tables).items() if n != before.get(t, 0)]
                after = checksums(suspects) if suspects else {}
                transaction.set_rollback(True)
            client.cookies.pop("messages", None)
            shown = {k: (v[:20] if isinstance(v, str) else v) for k, v in data.items()}
            if status >= 500:
                failures.append(f"{user.username} POST {path}: {status} for {shown}")
                continue
            changed = [tables[t] for t in after if after[t] != baseline[t]]
            if changed and looks_like_error(status, body):
                failures.append(f"POST {path}: an error ({status}) but saved {changed}: {shown}")
    print(f"\nform fuzz: {len(form_pages)} forms, {posted} posts, statuses {dict(statuses)}")
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures)
