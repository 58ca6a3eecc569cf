"""AE pages, the "SAE reports due" page, the admin, the sponsor API and the demo seeder."""

import random
import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from adverse_events import services
from adverse_events.models import AdverseEvent, CtcaeTerm
from adverse_events.sae_clock import SaeClock
from adverse_events.services import record_adverse_event
from core.roles import Role
from randomization.arms import Arm

from .builders import (
    days_ago,
    make_randomized_subject,
    make_subject,
    make_user,
    site_today,
    write_forms,
)

pytestmark = pytest.mark.usefixtures("ctcae")


def term(name):
    return CtcaeTerm.objects.get(term=name)


def ae_data(**overrides):
    data = {
        "term": term("Hypertension"),
        "grade": 2,
        "onset_date": site_today(),
        "ongoing": True,
        "outcome": "not_recovered",
    }
    return data | overrides


@pytest.fixture
def early_subject(site, coordinator):
    return make_subject(site, by=coordinator, consent_date=days_ago(30))


@pytest.fixture
def subject_b(site, coordinator):
    for _ in range(12):
        subject = make_randomized_subject(site, by=coordinator)
        if services.arm_of(subject) == Arm.B:
            return subject
    raise AssertionError("no arm B subject")


@pytest.fixture
def sae(early_subject, coordinator):
    """An SAE the site became aware of 25 hours ago, not reported: overdue."""
    return record_adverse_event(
        early_subject,
        user=coordinator,
        **ae_data(
            onset_date=days_ago(2),
            serious=True,
            sc_hospitalization=True,
            site_aware_at=timezone.now() - timedelta(hours=25),
        ),
    )


@pytest.fixture
def foreign_sae(other_site, other_coordinator):
    subject = make_subject(other_site, by=other_coordinator, consent_date=days_ago(5))
    return record_adverse_event(
        subject,
        user=other_coordinator,
        **ae_data(
            onset_date=days_ago(2),
            serious=True,
            sc_other_important=True,
            site_aware_at=timezone.now() - timedelta(hours=30),
        ),
    )


def urls(ae):
    identifier = ae.subject.subject_identifier
    return [
        reverse("adverse_events:list", args=[identifier]),
        reverse("adverse_events:new", args=[identifier]),
        reverse("adverse_events:edit", args=[identifier, ae.ae_number]),
        reverse("adverse_events:report", args=[identifier, ae.ae_number]),
    ]


def form_post(**overrides):
    data = {
        "submission": str(uuid.uuid4()),  # the new-AE form's one-time token
        "term": term("Hypertension").pk,
        "grade": "2",
        "onset_date": site_today().isoformat(),
        "ongoing": "on",
        "outcome": "not_recovered",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


# --- site pages ---------------------------------------------------------------------------------


def test_pages_open_for_the_site(client, coordinator, sae):
    client.force_login(coordinator)
    for url in urls(sae):
        response = client.get(url)
        assert response.status_code == 200, url
    page = client.get(urls(sae)[0]).content.decode()
    assert "AE 1" in page and "Hypertension" in page and "Overdue" in page


def test_another_sites_user_gets_404(client, other_coordinator, sae):
    client.force_login(other_coordinator)
    for url in urls(sae):
        assert client.get(url).status_code == 404, url
        assert client.post(url, form_post(reason="x")).status_code == 404, url
    assert AdverseEvent.objects.get().grade == 2


def test_subject_page_shows_the_ae_panel(client, coordinator, sae):
    client.force_login(coordinator)
    page = client.get(sae.subject.get_absolute_url()).content.decode()
    assert "Adverse events" in page
    assert reverse("adverse_events:new", args=[sae.subject.subject_identifier]) in page
    assert reverse("adverse_events:edit", args=[sae.subject.subject_identifier, 1]) in page


def test_new_ae_form_records_causality_for_the_arm(client, coordinator, subject_b):
    client.force_login(coordinator)
    url = reverse("adverse_events:new", args=[subject_b.subject_identifier])
    page = client.get(url).content.decode()
    assert "Causality to Sorafenib" in page
    assert "Toripalimab" not in page
    assert 'id="ae-term-grades"' in page  # the data of the grade-narrowing script
    response = client.post(
        url,
        form_post(
            term=term("Palmar-plantar erythrodysesthesia syndrome").pk,
            causality_sorafenib="definite",
            action_sorafenib="reduced",
            treatment_given="on",
            treatment_details="Urea cream",
        ),
    )
    assert response.status_code == 302
    ae = AdverseEvent.objects.get(subject=subject_b)
    assert ae.term.term == "Palmar-plantar erythrodysesthesia syndrome"
    (row,) = ae.causalities.all()
    assert (row.drug, row.causality, row.related, row.action_taken) == (
        "sorafenib",
        "definite",
        True,
        "reduced",
    )


def test_form_shows_refusals_without_a_500(client, coordinator, early_subject):
    client.force_login(coordinator)
    url = reverse("adverse_events:new", args=[early_subject.subject_identifier])
    response = client.post(url, form_post(term=term("Alopecia").pk, grade="3"))
    assert response.status_code == 200
    assert "Alopecia has no grade 3: its grades are 1, 2." in response.content.decode()
    response = client.post(url, form_post(serious="on"))
    assert "A serious event needs at least one seriousness criterion." in response.content.decode()
    response = client.post(url, form_post(term="not-a-term", grade="9"))
    assert response.status_code == 200
    assert not AdverseEvent.objects.exists()


def test_monitor_sees_but_cannot_record(client, site, early_subject):
    monitor = make_user(Role.MONITOR, site)
    client.force_login(monitor)
    url = reverse("adverse_events:new", args=[early_subject.subject_identifier])
    response = client.post(url, form_post(), follow=True)
    assert response.redirect_chain[-1][0] == early_subject.get_absolute_url()
    assert "at site 101. You may view 101-0001, not change it." in response.content.decode()
    assert not AdverseEvent.objects.exists()


def test_monitor_reads_an_ae_without_a_form(client, site, sae):
    monitor = make_user(Role.MONITOR, site)
    client.force_login(monitor)
    page = client.get(urls(sae)[2]).content.decode()
    assert "Read-only" in page and "Hypertension" in page and "Overdue" in page.title()
    assert write_forms(page) == 0
    assert 'name="grade"' not in page


def test_edit_with_reason_shows_the_audit_trail(client, coordinator, sae):
    client.force_login(coordinator)
    url = urls(sae)[2]
    data = form_post(
        onset_date=sae.onset_date.isoformat(),
        serious="on",
        sc_hospitalization="on",
        # typed in the site's local time, as the form shows it
        site_aware_at=timezone.localtime(sae.site_aware_at, sae.subject.site.zoneinfo).strftime(
            "%Y-%m-%dT%H:%M"
        ),
        grade="3",
    )
    response = client.post(url, data)  # no reason
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    response = client.post(url, data | {"reason": "Follow-up: hospitalized, grade 3"})
    assert response.status_code == 302
    sae.refresh_from_db()
    assert sae.grade == 3
    record = sae.history.latest("history_date")
    assert record.diff_against(record.prev_record).changed_fields == ["grade"]
    page = client.get(url).content.decode()
    assert "Follow-up: hospitalized, grade 3" in page
    assert "Grade 2 → Grade 3" in page


def test_sae_report_page_records_the_report(client, coordinator, sae):
    client.force_login(coordinator)
    reported = timezone.localtime(
        timezone.now() - timedelta(minutes=10), sae.subject.site.zoneinfo
    )  # typed in the site's local time
    response = client.post(urls(sae)[3], {"reported_at": reported.strftime("%Y-%m-%dT%H:%M")})
    assert response.status_code == 302
    sae.refresh_from_db()
    assert sae.sae_clock() == SaeClock.REPORTED_LATE


def test_sae_due_page_lists_own_sites_unreported_saes(client, coordinator, sae, foreign_sae):
    client.force_login(coordinator)
    page = client.get(reverse("adverse_events:sae_due")).content.decode()
    assert sae.subject.subject_identifier in page
    assert "OVERDUE" in page
    assert foreign_sae.subject.subject_identifier not in page
    services.mark_sae_reported(sae, user=coordinator, reported_at=timezone.now())
    page = client.get(reverse("adverse_events:sae_due")).content.decode()
    assert "No serious adverse event awaits its report." in page


def test_pages_need_a_login(client, sae):
    response = client.get(reverse("adverse_events:sae_due"))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


# --- admin ---------------------------------------------------------------------------------------


def test_data_manager_reviews_aes_in_the_admin(client, data_manager, sae, foreign_sae):
    client.force_login(data_manager)
    changelist = reverse("admin:adverse_events_adverseevent_changelist")
    response = client.get(changelist)
    assert response.status_code == 200
    assert response.context["cl"].result_count == 2
    for query in (
        {"sae_clock": "overdue"},
        {"sae_clock": "due_soon"},
        {"sae_clock": "reported_late"},
        {"serious__exact": "1"},
        {"grade": "2"},
        {"term__soc": "Vascular disorders"},
        {"subject__site__id__exact": str(sae.subject.site_id)},
    ):
        response = client.get(changelist, query)
        assert response.status_code == 200, query
    overdue = client.get(changelist, {"sae_clock": "overdue"}).context["cl"].result_count
    assert overdue == 2
    site_only = client.get(changelist, {"subject__site__id__exact": str(sae.subject.site_id)})
    assert site_only.context["cl"].result_count == 1
    for name in ("change", "history"):
        url = reverse(f"admin:adverse_events_adverseevent_{name}", args=[sae.pk])
        assert client.get(url).status_code == 200, url
    # Read-only: no add, and a POST to the change page changes nothing.
    assert client.get(reverse("admin:adverse_events_adverseevent_add")).status_code == 403
    client.post(reverse("admin:adverse_events_adverseevent_change", args=[sae.pk]), {"grade": 1})
    sae.refresh_from_db()
    assert sae.grade == 2


def test_ctcae_dictionary_in_the_admin(client, coordinator, data_manager):
    client.force_login(data_manager)
    response = client.get(reverse("admin:adverse_events_ctcaeterm_changelist"), {"q": "Acid"})
    assert response.status_code == 200
    assert response.context["cl"].result_count >= 1
    acidosis = term("Acidosis")
    url = reverse("admin:adverse_events_ctcaeterm_change", args=[acidosis.pk])
    assert client.get(url).status_code == 200
    client.force_login(coordinator)  # site staff work in the site app, not the admin
    assert client.get(url).status_code == 302


def test_site_staff_have_no_admin_the_data_manager_sees_every_site(
    client, coordinator, data_manager, sae, foreign_sae
):
    client.force_login(coordinator)
    assert client.get(reverse("admin:adverse_events_adverseevent_changelist")).status_code == 302
    client.force_login(data_manager)
    response = client.get(reverse("admin:adverse_events_adverseevent_changelist"))
    assert {ae.pk for ae in response.context["cl"].result_list} == {sae.pk, foreign_sae.pk}


# --- sponsor API ---------------------------------------------------------------------------------


def api(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def test_sponsor_reads_adverse_events(sponsor, sae, foreign_sae, subject_b, coordinator):
    record_adverse_event(
        subject_b,
        user=coordinator,
        **ae_data(causality={"sorafenib": {"causality": "probable", "action_taken": "reduced"}}),
    )
    response = api(sponsor).get("/api/v1/adverse-events/")
    assert response.status_code == 200
    rows = response.json()["results"]
    assert len(rows) == 3
    by_subject = {r["subject"]: r for r in rows}
    row = by_subject[subject_b.subject_identifier]
    assert row["meddra_code"] == "10020772"
    assert row["soc"] == "Vascular disorders"
    assert row["causality"] == [
        {
            "drug": "sorafenib",
            "causality": "probable",
            "related": True,
            "action_taken": "reduced",
        }
    ]
    serious = by_subject[sae.subject.subject_identifier]
    assert serious["serious"] is True and serious["sc_hospitalization"] is True
    assert serious["site_aware_at"] is not None and serious["sae_reported_at"] is None
    assert not {"initials", "date_of_birth"} & set(row)


def test_api_filters_site_and_updated_since(sponsor, sae, foreign_sae):
    client = api(sponsor)
    rows = client.get("/api/v1/adverse-events/", {"site": "202"}).json()["results"]
    assert [r["subject"] for r in rows] == [foreign_sae.subject.subject_identifier]
    future = client.get("/api/v1/adverse-events/", {"updated_since": "2999-01-01T00:00:00Z"})
    assert future.json()["results"] == []
    past = client.get("/api/v1/adverse-events/", {"updated_since": "2000-01-01T00:00:00Z"})
    assert len(past.json()["results"]) == 2
    assert client.get("/api/v1/adverse-events/", {"updated_since": "soon"}).status_code == 400


def test_api_is_scoped_and_read_only(other_site, sae, coordinator):
    monitor = make_user(Role.MONITOR, other_site)
    response = api(monitor).get("/api/v1/adverse-events/")
    assert response.status_code == 200
    assert response.json()["results"] == []
    assert api(monitor).get(f"/api/v1/adverse-events/{sae.pk}/").status_code == 404
    assert api(coordinator).get("/api/v1/adverse-events/").status_code == 403
    sponsor = make_user(Role.SPONSOR)
    assert api(sponsor).post("/api/v1/adverse-events/", {}).status_code == 405
    assert api(sponsor).delete(f"/api/v1/adverse-events/{sae.pk}/").status_code == 405


# --- demo ----------------------------------------------------------------------------------------


def test_demo_seeder_adds_typical_aes_and_one_sae(site, coordinator):
    from adverse_events import demo
    from core import registry
    from core.demo import DemoContext

    order = [f"{seed.__module__}.{seed.__name__}" for _, _, seed in registry.demo_seeders()]
    assert order.index("adverse_events.demo.seed") > order.index("randomization.demo.seed")
    subjects = [make_randomized_subject(site, by=coordinator) for _ in range(6)]
    subjects.append(make_subject(site, by=coordinator))  # not randomized: no AE
    lines = []
    ctx = DemoContext(
        n_subjects=len(subjects),
        rng=random.Random(7),
        today=site_today(),
        write=lines.append,
    )
    ctx.subjects = subjects
    ctx.users = {Role.SITE_STAFF: [coordinator]}
    demo.seed(ctx)
    events = AdverseEvent.objects.all()
    assert events.filter(subject=subjects[-1]).count() == 0
    assert {ae.subject_id for ae in events} == {s.pk for s in subjects[:-1]}
    assert events.filter(serious=True).count() == 1
    for ae in events:
        drugs = set(ae.causalities.values_list("drug", flat=True))
        assert drugs == set(services.study_drugs_of(ae.subject))
        assert ae.history.get().history_user == coordinator
    assert "one SAE" in lines[-1]


def test_starter_set_is_loaded_only_into_an_empty_dictionary():
    from adverse_events.starter_terms import STARTER_TERMS, load_starter_terms

    assert load_starter_terms() == 0  # the full dictionary is loaded: left alone
    assert CtcaeTerm.objects.count() == 837
    # Empty the live table inside this test's transaction (rolled back afterwards).
    CtcaeTerm.objects.all()._raw_delete(CtcaeTerm.objects.db)
    assert load_starter_terms() == len(STARTER_TERMS)
    assert CtcaeTerm.objects.count() == len(STARTER_TERMS)
    assert CtcaeTerm.objects.get(term="Death NOS").allowed_grades == (5,)
    assert CtcaeTerm.objects.filter(is_other_specify=True).count() == 1
