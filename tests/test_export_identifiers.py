"""No direct identifier in any export for the sponsor's people (issue 20).

The demo study is seeded once (one subject registered in error is then deleted, so the
deletions feed and the history have one), and every export is fetched as the demo's sponsor and
as its statistician: every endpoint of the API's router (each JSON page and the CSV: the forms,
the audit trail, the deletions and the reports), the ODM snapshot and archival file, and every
Dataset-JSON dataset; and the operator's ODM files (``export_odm``). None may hold any direct
identifier any subject has had (now or in the history): initials, date of birth (in any spelling
an export might write) and screening number. The same search
finds them in what a data manager reads, so a leak would not go unseen.

Subject identifiers (101-0009, USUBJID) are pseudonyms, not direct identifiers: they stay. The
demo's initials are two letters, a few of them also a name or code the exports write for every
subject (AE, DM, DS: ``exported_words``), which no search can tell apart; all the others are
searched for as a word anywhere (values, labels, reasons).
"""

from __future__ import annotations

import json
import re
from datetime import date
from io import StringIO
from xml.etree import ElementTree

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.management import call_command
from rest_framework.test import APIClient

from exports import dataset_json, records
from exports.urls import router
from subjects import services as subject_services
from subjects.models import Subject, SubjectStatus

pytestmark = pytest.mark.django_db

LONG_AGO = "2000-01-01T00:00:00Z"


def spellings(iso: str) -> set[str]:
    """A date as an export could write it (ISO, SAS-style, day/month orders, words)."""
    day = date.fromisoformat(iso)
    return {
        day.isoformat(),
        day.strftime("%Y%m%d"),
        day.strftime("%d/%m/%Y"),
        day.strftime("%m/%d/%Y"),
        day.strftime("%Y/%m/%d"),
        day.strftime("%d%b%Y").upper(),
        day.strftime("%B %d, %Y"),
        day.strftime("%d %B %Y"),
    }


def fetch(client, path, **query) -> str:
    """The body of a GET (a refusal's too: an endpoint that is not the user's says so)."""
    response = client.get(path, query)
    assert response.status_code in (200, 403, 404), (path, query, response.status_code)
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def api_pages(client, path, **query) -> list[str]:
    """Every page of a JSON list (its next links), as text."""
    pages = [fetch(client, path, **query)]
    while True:
        body = json.loads(pages[-1])
        if not isinstance(body, dict) or not body.get("next"):
            return pages
        pages.append(fetch(client, body["next"]))


def every_export(username: str) -> dict[str, str]:
    """Export name -> its text, everything the user can read through the API."""
    user = get_user_model().objects.get(username=username)
    client = APIClient()
    client.force_authenticate(user)
    found = {}
    for prefix, _, _ in router.registry:
        query = {"since": LONG_AGO} if prefix == "deletions" else {}
        for n, page in enumerate(api_pages(client, f"/api/v1/{prefix}/", **query)):
            found[f"{prefix} page {n + 1}"] = page
        found[f"{prefix}.csv"] = fetch(client, f"/api/v1/{prefix}/", format="csv", **query)
    found["odm"] = fetch(client, "/api/v1/exports/odm/")
    found["odm archival"] = fetch(client, "/api/v1/exports/odm/", archival="1")
    for dataset in dataset_json.datasets():
        path = f"/api/v1/exports/dataset-json/{dataset.name.lower()}/"
        found[f"dataset-json {dataset.name}"] = fetch(client, path)
    return found


def exported_words() -> set[str]:
    """Names and codes the exports write whoever the subject: dataset and form codes, and the
    codes of every code list."""
    words = {dataset.name for dataset in dataset_json.datasets()}
    for form in records.export_forms():
        words.add(form.code)
        for item in (*form.items, *(i for group in form.children for i in group.items)):
            words.update(code for code, _ in item.codelist)
    return words


class Identifiers:
    """Every direct identifier the demo's subjects have had (the history's values: a deleted
    subject's and changed values too), and a search for them in a text."""

    def __init__(self):
        values = Subject.history.values_list(
            "initials", "date_of_birth", "screening_number"
        ).distinct()
        self.initials = {initials for initials, _, _ in values if initials}
        self.births = {born.isoformat() for _, born, _ in values if born}
        self.dates = {spelling for born in self.births for spelling in spellings(born)}
        self.numbers = {number for _, _, number in values if number}
        subjects = Subject.history.values("id").distinct().count()
        assert subjects >= 20 and len(self.numbers) == subjects  # one number each
        assert len(self.births) >= subjects - 2 and len(self.initials) >= subjects - 5
        self.words = self.initials - exported_words()
        assert len(self.words) >= len(self.initials) - 5  # the search is not vacuous
        self._word = re.compile(
            r"(?<![A-Za-z0-9])(" + "|".join(sorted(self.words)) + r")(?![A-Za-z0-9])"
        )

    def in_text(self, text: str) -> set[str]:
        found = {value for value in self.numbers | self.dates if value in text}
        return found | set(self._word.findall(text))


@pytest.fixture
def demo(tmp_path, settings):
    settings.VAR_DIR = tmp_path
    cache.clear()  # the API throttles count in the cache
    call_command("seed_demo", stdout=StringIO())
    in_error = Subject.objects.filter(
        status=SubjectStatus.SCREENING, consent_date__isnull=True
    ).first()
    subject_services.delete_subject(
        in_error, user=in_error.history.earliest().history_user, reason="Registered in error."
    )
    yield tmp_path
    cache.clear()


def operator_files(folder) -> dict[str, str]:
    """The ODM files ``export_odm`` writes by default (all sites, as an operator)."""
    found = {}
    for name, options in (("odm file", ()), ("odm archival file", ("--archival",))):
        path = folder / f"{name}.xml"
        call_command("export_odm", "-o", str(path), *options, stderr=StringIO())
        found[name] = path.read_text()
    return found


def test_no_export_holds_a_direct_identifier_for_the_sponsor_or_the_statistician(demo):
    identifiers = Identifiers()
    subjects = set(Subject.objects.values_list("subject_identifier", flat=True))

    # The search finds every kind of identifier in what a data manager reads.
    seen = every_export("datamanager")
    for name in ("subjects page 1", "subjects.csv", "audit-trail.csv", "odm", "odm archival"):
        found = identifiers.in_text(seen[name])
        assert found & identifiers.numbers and found & identifiers.dates, name
        assert found & identifiers.words, name
    trail = "".join(text for name, text in seen.items() if name.startswith("audit-trail page"))
    everything = identifiers.numbers | identifiers.births | identifiers.words
    assert identifiers.in_text(trail) >= everything  # the deleted subject's too

    for username in ("sponsor", "statistician"):
        exports = every_export(username)
        assert all(s in exports["subjects.csv"] for s in subjects)  # pseudonyms stay
        ElementTree.fromstring(exports["odm archival"])  # whole files
        for name in exports:
            if name.startswith("dataset-json"):
                json.loads(exports[name])
        leaks = {}
        for name, text in exports.items():
            if found := identifiers.in_text(text):
                leaks[name] = sorted(found)
        assert not leaks, f"{username} reads direct identifiers: {leaks}"

    for name, text in operator_files(demo).items():
        assert not identifiers.in_text(text), f"{name}: {sorted(identifiers.in_text(text))}"
