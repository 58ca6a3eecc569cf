"""The admin's lists at any study size: a big unfiltered list is counted from PostgreSQL's
estimate (not by reading the whole table), a filtered one exactly; the casebook order reads down
the subject identifier; the site filter offers the user's sites."""

import pytest
from django.db import connection
from django.urls import reverse

from core import admin as core_admin
from subjects.models import Subject

from .builders import make_site, make_subject

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:subjects_subject_changelist"


@pytest.fixture
def postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("The estimate is PostgreSQL's (pg_class.reltuples).")


def _analyze() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f'ANALYZE "{Subject._meta.db_table}"')


def test_a_big_unfiltered_list_is_counted_from_the_estimate(
    client, postgresql, site, coordinator, data_manager, monkeypatch
):
    """Over ``ESTIMATED_COUNT_ABOVE`` rows, the changelist says the estimate ANALYZE left (here
    three subjects, then a fourth added since), a filtered list the exact count, and a page
    past the estimate is an empty page."""
    for _ in range(3):
        make_subject(site, by=coordinator)
    _analyze()
    make_subject(site, by=coordinator)  # after the statistics: not in the estimate
    monkeypatch.setattr(core_admin, "ESTIMATED_COUNT_ABOVE", 2)
    monkeypatch.setattr(core_admin.StudyAdminMixin, "list_per_page", 2)
    client.force_login(data_manager)
    url = reverse(CHANGELIST)
    listing = client.get(url)
    assert listing.context["cl"].result_count == 3
    assert Subject.objects.count() == 4
    screening = client.get(url, {"status": "screening"})
    assert screening.context["cl"].result_count == 4
    past_the_end = client.get(url, {"p": "3"})
    assert past_the_end.status_code == 200
    # Under the threshold: exact.
    monkeypatch.setattr(core_admin, "ESTIMATED_COUNT_ABOVE", 10)
    assert client.get(url).context["cl"].result_count == 4


def test_the_changelist_is_in_casebook_order_and_filters_by_the_users_sites(
    client, site, data_manager
):
    """Subjects listed by site code then sequence (the identifier's order); the site filter
    lists every site the data manager sees, one without subjects too."""
    later_site = make_site("050")
    quiet_site = make_site("999")
    made = [make_subject(s) for s in (site, later_site, site)]
    client.force_login(data_manager)
    listing = client.get(reverse(CHANGELIST))
    shown = [s.subject_identifier for s in listing.context["cl"].result_list]
    assert shown == sorted(s.subject_identifier for s in made)
    assert shown[0].startswith("050-")
    site_filter = next(
        f for f in listing.context["cl"].filter_specs if getattr(f, "field_path", "") == "site"
    )
    offered = {title for _, title in site_filter.lookup_choices}
    assert {str(site), str(later_site), str(quiet_site)} <= offered
