"""The eligibility web pages and admin, through the Django test client."""

from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from core.roles import Role
from eligibility import selectors, services
from eligibility.models import EligibilityAssessment, EligibilitySignature
from subjects.models import SubjectStatus
from tests.builders import (  # noqa: F401
    PASSWORD,
    days_ago,
    eligible_data,
    make_eligible_assessment,
    make_subject,
    make_user,
)


def as_post(data: dict, **extra) -> dict:
    """CRF values as the browser sends them."""
    post = {}
    for name, value in {**data, **extra}.items():
        if value is None:
            post[name] = "unknown" if name not in NON_BOOL else ""
        elif isinstance(value, bool):
            post[name] = "true" if value else "false"
        elif isinstance(value, date):
            post[name] = value.isoformat()
        else:
            post[name] = str(value)
    return post


NON_BOOL = {
    f.name
    for f in EligibilityAssessment._meta.concrete_fields
    if f.get_internal_type() != "BooleanField"
}


def url(subject, page=""):
    return f"/subjects/{subject.subject_identifier}/eligibility/{page}"


@pytest.fixture
def logged_in(client, coordinator):
    client.force_login(coordinator)
    return client


def test_enter_the_crf_through_the_form(logged_in, subject):
    page = logged_in.get(url(subject, "edit/"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "<fieldset" in html and "Hepatitis B and C (IN10)" in html
    assert 'name="partner_childbearing_potential"' in html  # male subject
    assert 'name="pregnancy_test_date"' not in html
    response = logged_in.post(url(subject, "edit/"), as_post(eligible_data(subject)))
    assert response.status_code == 302, response.content.decode()[:2000]
    assessment = EligibilityAssessment.objects.get(subject=subject)
    assert assessment.platelets == Decimal("160") and assessment.cirrhosis is True
    assert services.evaluate_eligibility(assessment).is_eligible
    detail = logged_in.get(url(subject)).content.decode()
    assert "Eligible: all 34 criteria pass" in detail
    assert "EX22" in detail and "Aged" in detail
    assert "Sign: eligible" not in detail  # site staff do not sign


@pytest.mark.parametrize(
    "change, field, words",
    [
        ({"measurable_lesions": -1}, "measurable_lesions", "greater than or equal to 0"),
        ({"platelets_reported": "25000"}, "platelets_reported", "between 0 and 2000"),
        ({"lab_date": days_ago(-3)}, "lab_date", "in the future"),
        ({"anc_reported": "abc"}, "anc_reported", "Enter a number"),
    ],
)
def test_bad_input_in_the_form_saves_nothing(logged_in, subject, change, field, words):
    response = logged_in.post(url(subject, "edit/"), as_post(eligible_data(subject), **change))
    assert response.status_code == 200
    assert words in " ".join(response.context["form"].errors[field])
    assert "Nothing was saved" in response.content.decode()
    assert not EligibilityAssessment.objects.exists()


def test_refused_change_shows_the_evaluation_of_the_saved_data(logged_in, subject, coordinator):
    """A refused edit (here a planned date at the very start of the calendar, before consent) is
    a form error; the evaluation beside the form is the saved one, not the refused input (whose
    windows would reach before year 1)."""
    make_eligible_assessment(subject, by=coordinator, sign=False)
    response = logged_in.post(
        url(subject, "edit/"),
        as_post(eligible_data(subject), planned_randomization_date="0001-01-01", reason="Typo"),
    )
    assert response.status_code == 200
    assert "before the informed consent" in " ".join(
        response.context["form"].errors["planned_randomization_date"]
    )
    assert response.context["evaluation"].reference_date == subject.consent_date
    saved = EligibilityAssessment.objects.get(subject=subject)
    assert saved.planned_randomization_date == subject.consent_date


def test_a_window_reaching_before_year_one_is_evaluated_not_a_crash():
    from eligibility.criteria import window_start

    assert window_start(date(1, 1, 5), days=28) == date.min
    assert window_start(date(1, 3, 5), months=6) == date.min


def test_future_date_of_birth_in_the_subject_form(logged_in, subject):
    response = logged_in.post(
        f"/subjects/{subject.subject_identifier}/edit/",
        {
            "screening_number": subject.screening_number,
            "initials": "",
            "date_of_birth": days_ago(-5).isoformat(),
            "age_at_screening": "",
            "sex": "M",
            "reason": "correction",
        },
    )
    assert response.status_code == 200
    assert "in the future" in response.content.decode()
    subject.refresh_from_db()
    assert subject.date_of_birth == date(1965, 5, 17)


def test_change_needs_reason_and_voids_signature(logged_in, subject, coordinator):
    make_eligible_assessment(subject, by=coordinator)
    data = as_post(eligible_data(subject), ecog=1)
    response = logged_in.post(url(subject, "edit/"), data)
    assert response.status_code == 200
    assert "This field is required" in " ".join(response.context["form"].errors["reason"])
    assert EligibilityAssessment.objects.get().ecog == 0
    response = logged_in.post(url(subject, "edit/"), {**data, "reason": "ECOG re-assessed"})
    assert response.status_code == 302
    signature = EligibilitySignature.objects.get()
    assert signature.void and "ECOG re-assessed" in signature.void_reason
    detail = logged_in.get(url(subject)).content.decode()
    assert "Void" in detail and "ECOG re-assessed" in detail and "not signed" in detail


def test_investigator_signs_on_the_page(client, subject, coordinator, investigator):
    make_eligible_assessment(subject, by=coordinator, sign=False)
    client.force_login(investigator)
    assert "Sign: eligible" in client.get(url(subject)).content.decode()
    response = client.post(url(subject, "sign/"), {"password": "wrong"})
    assert response.status_code == 200
    assert "password is not correct" in response.content.decode()
    assert not EligibilitySignature.objects.exists()
    response = client.post(url(subject, "sign/"), {"password": PASSWORD})
    assert response.status_code == 302
    assert EligibilitySignature.objects.get().signer == investigator


def test_site_staff_cannot_sign_on_the_page(logged_in, subject, coordinator):
    make_eligible_assessment(subject, by=coordinator, sign=False)
    assert "Sign: eligible" not in logged_in.get(url(subject)).content.decode()
    response = logged_in.post(url(subject, "sign/"), {"password": PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0] == subject.get_absolute_url()
    assert "not an investigator at site 101" in response.content.decode()
    assert not EligibilitySignature.objects.exists()


def test_screen_failure_on_the_page(client, subject, coordinator, investigator):
    make_eligible_assessment(subject, by=coordinator, sign=False, cns_metastases=True)
    client.force_login(investigator)
    assert "Confirm screen failure" in client.get(url(subject)).content.decode()
    response = client.post(
        url(subject, "screen-failure/"), {"password": PASSWORD, "on_date": days_ago(0)}
    )
    assert response.status_code == 302
    subject.refresh_from_db()
    assert subject.status == SubjectStatus.SCREEN_FAILED


def test_no_crf_before_consent(logged_in, site, coordinator):
    subject = make_subject(site, by=coordinator, consented=False)
    response = logged_in.get(url(subject, "edit/"))
    assert response.status_code == 302 and response.url == subject.get_absolute_url()
    assert "no CRF data before consent" in logged_in.get(url(subject)).content.decode()


@pytest.mark.parametrize("page", ["", "edit/", "sign/", "screen-failure/"])
def test_other_site_gets_404(client, subject, coordinator, other_coordinator, page):
    make_eligible_assessment(subject, by=coordinator, sign=False)
    client.force_login(other_coordinator)
    assert client.get(url(subject, page)).status_code == 404
    assert client.post(url(subject, page), {"password": PASSWORD}).status_code == 404


def test_monitor_reads_but_does_not_edit(client, subject, site, coordinator):
    make_eligible_assessment(subject, by=coordinator)
    monitor = make_user(Role.MONITOR, site)
    client.force_login(monitor)
    assert client.get(url(subject)).status_code == 200
    response = client.get(url(subject, "edit/"), follow=True)
    html = response.content.decode()
    assert "You are not site staff or an investigator at site 101" in html
    assert 'name="ecog"' not in html


def test_panel_on_the_subject_page(logged_in, subject, coordinator):
    html = logged_in.get(subject.get_absolute_url()).content.decode()
    assert "No eligibility assessment yet" in html
    make_eligible_assessment(subject, by=coordinator)
    html = logged_in.get(subject.get_absolute_url()).content.decode()
    assert "Eligible: all 34 criteria pass" in html and "signed by" in html


def test_anonymous_redirected_to_login(client, subject):
    response = client.get(url(subject))
    assert response.status_code == 302 and "/accounts/login/" in response.url


# --- admin ---------------------------------------------------------------------------------------


def test_admin_read_only_for_data_manager(client, subject, coordinator, data_manager):
    assessment = make_eligible_assessment(subject, by=coordinator)
    client.force_login(data_manager)
    page = client.get(f"/admin/eligibility/eligibilityassessment/{assessment.pk}/change/")
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    response = client.post(
        f"/admin/eligibility/eligibilityassessment/{assessment.pk}/change/", {"ecog": "1"}
    )
    assert response.status_code == 403
    assert client.get("/admin/eligibility/eligibilityassessment/").status_code == 200
    history = client.get(f"/admin/eligibility/eligibilityassessment/{assessment.pk}/history/")
    assert history.status_code == 200


def test_site_users_are_refused_by_the_eligibility_admin(
    client, subject, coordinator, investigator, other_coordinator
):
    """Site staff and investigators enter and sign the CRF on the site's pages, not in the admin."""
    assessment = make_eligible_assessment(subject, by=coordinator, investigator=investigator)
    signature = selectors.active_signature(assessment)
    change_url = f"/admin/eligibility/eligibilityassessment/{assessment.pk}/change/"
    urls = [
        "/admin/eligibility/eligibilityassessment/",
        change_url,
        f"/admin/eligibility/eligibilitysignature/{signature.pk}/change/",
    ]
    for user in (coordinator, investigator, other_coordinator):
        client.force_login(user)
        for admin_url in urls:
            response = client.get(admin_url)
            assert response.status_code == 302 and "/admin/login/" in response.url, admin_url
        client.post(change_url, {**as_post(eligible_data(subject), ecog=1), "change_reason": "x"})
    assert EligibilityAssessment.objects.get().ecog == 0
    assert selectors.active_signature(assessment) is not None


def test_the_eligibility_admin_offers_no_add_or_change_form(
    client, subject, coordinator, data_manager
):
    assessment = make_eligible_assessment(subject, by=coordinator)
    client.force_login(data_manager)
    change_url = f"/admin/eligibility/eligibilityassessment/{assessment.pk}/change/"
    page = client.get(change_url).content.decode()
    assert 'name="change_reason"' not in page and 'name="ecog"' not in page
    assert client.get("/admin/eligibility/eligibilityassessment/add/").status_code == 403
    assert client.get("/admin/eligibility/eligibilitysignature/add/").status_code == 403
    data = {**as_post(eligible_data(subject), ecog=1), "change_reason": "ECOG corrected"}
    assert client.post(change_url, data).status_code == 403
    assert EligibilityAssessment.objects.get().ecog == 0


def _subject_17(subject, **fields) -> dict:
    """The subject's screening data as posted, with a date of birth that makes them 17."""
    today = days_ago(0)
    return {
        "screening_number": subject.screening_number,
        "screening_date": subject.screening_date.isoformat(),
        "initials": subject.initials,
        "date_of_birth": today.replace(year=today.year - 17, day=min(today.day, 28)).isoformat(),
        "sex": subject.sex,
        **fields,
    }


def test_editing_the_date_of_birth_on_the_subject_page_voids_the_signature(
    client, subject, coordinator, investigator
):
    assessment = make_eligible_assessment(subject, by=coordinator)
    client.force_login(coordinator)
    response = client.post(
        reverse("subjects:edit", args=[subject.subject_identifier]),
        _subject_17(subject, reason="DOB misread from the ID card"),
    )
    assert response.status_code == 302, response.content.decode()
    assert selectors.active_signature(assessment) is None
    page = client.get(subject.get_absolute_url()).content.decode()
    assert "Not eligible" in page and "IN01" in page
    assert "Not signed by an investigator" in page
    detail = client.get(url(subject)).content.decode()
    assert "The subject&#x27;s data were changed: DOB misread from the ID card" in detail
    assert ">Valid<" not in detail


def test_no_one_changes_the_date_of_birth_in_the_admin(
    client, subject, coordinator, data_manager, django_user_model
):
    """The date of birth is corrected on the subject page only (above): the admin offers no
    change form for subject data to anyone, so a signature is never left standing by it."""
    assessment = make_eligible_assessment(subject, by=coordinator)
    superuser = django_user_model.objects.create_superuser("root", "r@example.org", PASSWORD)
    change_url = reverse("admin:subjects_subject_change", args=[subject.pk])
    for user in (coordinator, data_manager, superuser):
        client.force_login(user)
        page = client.get(change_url)
        assert 'name="date_of_birth"' not in page.content.decode()
        response = client.post(
            change_url,
            _subject_17(subject, age_at_screening="", change_reason="DOB corrected in the admin"),
        )
        assert response.status_code in (302, 403)
    subject.refresh_from_db()
    assert subject.date_of_birth == date(1965, 5, 17)
    assert selectors.valid_signature(assessment) is not None


def test_the_crf_has_section_navigation_needed_markers_and_a_shrinking_missing_list(
    logged_in, subject, coordinator
):
    from eligibility.forms import SECTIONS
    from tests.builders import eligible_data

    first = logged_in.get(url(subject, "edit/")).content.decode()
    for number, (title, _, _) in enumerate(SECTIONS, start=1):
        assert f'<a href="#section-{number}">{title}</a>' in first
        assert f'id="section-{number}"' in first
    assert 'class="needed"' in first  # needed fields marked before the first save
    assert "after the first save, this box lists what is still missing" in first

    data = eligible_data(subject)
    partial = {k: v for k, v in data.items() if k not in ("ecog", "anc", "anc_reported")}
    services.save_assessment(subject, user=coordinator, data=partial, reason="")
    page = logged_in.get(url(subject, "edit/")).content.decode()
    assert "Still missing" in page
    assert '<a href="#id_ecog">ECOG performance status</a>' in page
    services.save_assessment(
        subject, user=coordinator, data={"ecog": data["ecog"]}, reason="ECOG from the notes"
    )
    after = logged_in.get(url(subject, "edit/")).content.decode()
    assert '<a href="#id_ecog">' not in after  # the list shrank
