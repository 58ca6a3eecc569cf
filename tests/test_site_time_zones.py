"""Each site has a time zone: its staff type and read date-times in their own local time, with the
zone named ("24 Nov 2026 21:02 CST"); the database keeps UTC.

The dates here are fixed days of 2026, in the past of every run (the study's AEs cannot be in the
future): the examples are the ones people check by hand.
"""

import uuid
from datetime import UTC, date, datetime
from unittest import mock
from zoneinfo import available_timezones

import pytest
from django.core.exceptions import ValidationError
from django.template import Context, Template
from django.urls import reverse

from adverse_events.models import AdverseEvent, CtcaeTerm
from adverse_events.sae_clock import SaeClock, due_at
from adverse_events.starter_terms import load_starter_terms
from core.forms import SiteDateTimeField
from core.roles import Role
from core.site_time import EARLIER, LATER, format_site_time, to_site_time
from exports import sdtm
from randomization import selectors as randomization_selectors
from randomization.arms import Arm
from randomization.selectors import RandomizationDate
from subjects import services as subject_services
from subjects.models import Site, Subject, SubjectStatus
from survival import selectors as survival_selectors
from treatment import selectors as treatment_selectors
from treatment.schedule import VisitKind

from .builders import make_site, make_subject, make_subject_in_arm, make_user
from .builders.treatment import add_cycle

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def terms(db):
    load_starter_terms()


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def ae_post(**fields) -> dict:
    data = {
        "submission": str(uuid.uuid4()),
        "term": CtcaeTerm.objects.get(term="Hypertension").pk,
        "grade": "3",
        "ongoing": "on",
        "outcome": "not_recovered",
        "serious": "on",
        "sc_hospitalization": "on",
    }
    return data | fields


def site_with_subject(code: str, zone: str, consented_on: date):
    site = make_site(code, time_zone=zone)
    coordinator = make_user(Role.SITE_STAFF, site)
    subject = make_subject(
        site, by=coordinator, screening_date=consented_on, consent_date=consented_on
    )
    return site, coordinator, subject


# --- the site's zone ------------------------------------------------------------------------------


def test_a_new_site_takes_the_default_zone_from_the_setting(settings):
    assert make_site("101").time_zone == settings.EDC_DEFAULT_SITE_TIME_ZONE
    settings.EDC_DEFAULT_SITE_TIME_ZONE = "Europe/Paris"
    assert make_site("301").time_zone == "Europe/Paris"


@pytest.mark.parametrize("name", ["Asia/Beijing", "CST", "Europe/paris", "", "UTC+8"])
def test_a_zone_zoneinfo_does_not_know_is_refused(name, data_manager):
    site = Site(code="401", name="Hospital 401", country="China", time_zone=name)
    with pytest.raises(ValidationError) as refused:
        subject_services.save_site(site, user=data_manager)
    assert "time_zone" in refused.value.message_dict
    assert not Site.objects.filter(code="401").exists()


def test_data_managers_set_the_zone_in_the_admin(client, data_manager, site):
    client.force_login(data_manager)
    url = reverse("admin:subjects_site_change", args=[site.pk])
    page = client.get(url).text
    assert 'name="time_zone"' in page and "Asia/Shanghai" in page
    data = {"code": "101", "name": site.name, "country": "China", "active": "on"}
    response = client.post(url, data | {"time_zone": "Mars/Olympus", "change_reason": "Move"})
    assert response.status_code == 200
    assert "Mars/Olympus is not a time zone name" in response.text
    response = client.post(url, data | {"time_zone": "Europe/Paris", "change_reason": "Move"})
    assert response.status_code == 302
    site.refresh_from_db()
    assert site.time_zone == "Europe/Paris"
    changelist = client.get(reverse("admin:subjects_site_changelist")).text
    assert "Europe/Paris" in changelist


# --- entered in local time, stored in UTC, shown in local time with the zone named ---------------


def test_an_ae_entered_at_a_shanghai_site_is_stored_in_utc_and_shown_in_cst(client):
    site, coordinator, subject = site_with_subject("101", "Asia/Shanghai", date(2026, 11, 20))
    client.force_login(coordinator)
    url = reverse("adverse_events:new", args=[subject.subject_identifier])
    form = client.get(url).text
    assert "Site became aware (Asia/Shanghai time)" in form
    response = client.post(url, ae_post(onset_date="2026-11-24", site_aware_at="2026-11-24T21:02"))
    assert response.status_code == 302
    ae = AdverseEvent.objects.get()
    assert ae.site_aware_at == utc(2026, 11, 24, 13, 2)  # 21:02 CST is 13:02 UTC
    edit = client.get(ae.get_absolute_url()).text
    assert 'value="2026-11-24T21:02"' in edit  # the form shows it back in local time
    monitor = make_user(Role.MONITOR, site)
    client.force_login(monitor)
    read_only = client.get(ae.get_absolute_url()).text
    assert "site aware 24 Nov 2026 21:02 CST" in read_only
    assert "+00:00" not in read_only
    client.force_login(coordinator)
    due = client.get(reverse("adverse_events:sae_due")).text
    assert "24 Nov 2026 21:02 CST" in due and "25 Nov 2026 21:02 CST" in due  # aware, due
    report = client.get(reverse("adverse_events:report", args=[subject.subject_identifier, 1]))
    assert "Site became aware 24 Nov 2026 21:02 CST; report due by 25 Nov 2026 21:02 CST" in (
        report.text
    )


def test_the_subject_pages_timestamps_read_in_the_sites_time(client):
    site, coordinator, subject = site_with_subject("101", "Asia/Shanghai", date(2026, 11, 20))
    client.force_login(coordinator)
    page = client.get(subject.get_absolute_url()).text
    registered = subject.history.earliest("history_date").history_date
    assert format_site_time(registered, site) in page
    assert format_site_time(registered, site).endswith(" CST")
    assert registered.isoformat() not in page
    assert "When (UTC)" not in page


def test_an_awareness_late_in_the_day_at_the_site_is_on_the_onset_day(client):
    """07:30 in Shanghai on 24 Nov is 23:30 UTC on 23 Nov: still the onset day at the site."""
    site, coordinator, subject = site_with_subject("101", "Asia/Shanghai", date(2026, 11, 20))
    client.force_login(coordinator)
    url = reverse("adverse_events:new", args=[subject.subject_identifier])
    response = client.post(url, ae_post(onset_date="2026-11-24", site_aware_at="2026-11-24T07:30"))
    assert response.status_code == 302, response.text
    assert AdverseEvent.objects.get().site_aware_at == utc(2026, 11, 23, 23, 30)


def test_a_paris_site_across_the_spring_change_of_the_clocks(client):
    """29 Mar 2026 in Paris: 02:00 CET became 03:00 CEST. Aware at 01:30 CET, reported at 03:30
    CEST: one hour later, not two; 02:30 that night never existed and is refused."""
    site, coordinator, subject = site_with_subject("301", "Europe/Paris", date(2026, 3, 20))
    client.force_login(coordinator)
    new = reverse("adverse_events:new", args=[subject.subject_identifier])
    response = client.post(new, ae_post(onset_date="2026-03-28", site_aware_at="2026-03-29T02:30"))
    assert response.status_code == 200
    assert "29 Mar 2026 02:30 does not exist in Europe/Paris" in response.text
    assert not AdverseEvent.objects.exists()
    response = client.post(new, ae_post(onset_date="2026-03-28", site_aware_at="2026-03-29T01:30"))
    assert response.status_code == 302
    report = reverse("adverse_events:report", args=[subject.subject_identifier, 1])
    response = client.post(report, {"reported_at": "2026-03-29T03:30"})
    assert response.status_code == 302
    ae = AdverseEvent.objects.get()
    assert ae.site_aware_at == utc(2026, 3, 29, 0, 30)
    assert ae.sae_reported_at == utc(2026, 3, 29, 1, 30)
    assert ae.sae_clock() == SaeClock.REPORTED
    client.force_login(make_user(Role.MONITOR, site))
    read_only = client.get(ae.get_absolute_url()).text
    assert "site aware 29 Mar 2026 01:30 CET; report reported (29 Mar 2026 03:30 CEST)" in read_only
    # A correction across the change: 03:10 CEST is 40 minutes after 01:30 CET.
    client.force_login(coordinator)
    page = client.get(ae.get_absolute_url()).text
    assert 'value="2026-03-29T01:30"' in page
    corrected = ae_post(onset_date="2026-03-28", site_aware_at="2026-03-29T03:10")
    response = client.post(ae.get_absolute_url(), corrected | {"reason": "Source: 03:10"})
    assert response.status_code == 302
    ae.refresh_from_db()
    assert ae.site_aware_at == utc(2026, 3, 29, 1, 10)
    page = client.get(ae.get_absolute_url()).text
    assert "29 Mar 2026 01:30 CET → 29 Mar 2026 03:10 CEST" in page  # the audit trail


def test_the_repeated_autumn_hour_is_read_on_the_safe_side():
    """25 Oct 2026 in Paris: 02:30 happened twice (CEST, then CET). The SAE clock starts at the
    earlier; a report time is the later (never taken as earlier than it may have been)."""
    aware = SiteDateTimeField(zone="Europe/Paris", fold=EARLIER)
    reported = SiteDateTimeField(zone="Europe/Paris", fold=LATER)
    assert aware.clean("2026-10-25T02:30") == utc(2026, 10, 25, 0, 30)
    assert reported.clean("2026-10-25T02:30") == utc(2026, 10, 25, 1, 30)
    assert format_site_time(utc(2026, 10, 25, 0, 30), "Europe/Paris") == "25 Oct 2026 02:30 CEST"
    assert format_site_time(utc(2026, 10, 25, 1, 30), "Europe/Paris") == "25 Oct 2026 02:30 CET"


def test_the_field_takes_the_local_wall_clock_and_gives_utc():
    field = SiteDateTimeField(label="Site became aware", zone="Asia/Shanghai")
    assert field.label == "Site became aware (Asia/Shanghai time)"
    assert field.clean("2026-11-24T21:02") == utc(2026, 11, 24, 13, 2)
    assert field.clean("2026-11-24T21:02+00:00") == utc(2026, 11, 24, 21, 2)  # explicit offset
    assert field.prepare_value(utc(2026, 11, 24, 13, 2)) == datetime(2026, 11, 24, 21, 2)
    with pytest.raises(ValidationError):
        field.clean("24/11/2026 9pm")


OUT_OF_RANGE = "Enter a date and time between 01 Jan 1900 00:00 and 31 Dec 9998 23:59."
CALENDAR_ENDS = [
    "0001-01-01T00:00",  # east of UTC, the UTC moment would be in year 0
    "9999-12-31T23:59",  # west of UTC, in year 10000
    "0001-01-01T00:00+05:00",  # typed with an offset: the same
    "9999-12-31T23:59-05:00",
    "1899-12-31T23:59",
]


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "America/New_York"])
def test_a_time_at_the_ends_of_the_calendar_is_a_form_error_on_every_site_time_form(client, zone):
    """Year 1 or 31 Dec 9999 typed as the awareness or report time of an SAE: a form error naming
    the range, nothing saved, on the new AE, its correction and the report."""
    site, coordinator, subject = site_with_subject("101", zone, date(2026, 11, 20))
    client.force_login(coordinator)
    new = reverse("adverse_events:new", args=[subject.subject_identifier])
    for value in CALENDAR_ENDS:
        response = client.post(new, ae_post(onset_date="2026-11-24", site_aware_at=value))
        assert response.status_code == 200 and OUT_OF_RANGE in response.text, value
    assert not AdverseEvent.objects.exists()
    response = client.post(new, ae_post(onset_date="2026-11-24", site_aware_at="2026-11-24T21:02"))
    assert response.status_code == 302
    ae = AdverseEvent.objects.get()
    report = reverse("adverse_events:report", args=[subject.subject_identifier, ae.ae_number])
    for value in CALENDAR_ENDS:
        edit = ae_post(onset_date="2026-11-24", site_aware_at=value) | {"reason": "Typo"}
        response = client.post(ae.get_absolute_url(), edit)
        assert response.status_code == 200 and OUT_OF_RANGE in response.text, value
        response = client.post(report, {"reported_at": value})
        assert response.status_code == 200 and OUT_OF_RANGE in response.text, value
    saved = AdverseEvent.objects.get()
    assert (saved.site_aware_at, saved.sae_reported_at) == (ae.site_aware_at, None)
    assert saved.history.count() == ae.history.count()


def test_the_first_and_last_enterable_times_exist_in_every_zone_with_the_sae_clock():
    """The range is inside what a date-time holds with a day to spare: its ends convert to UTC
    and back, and get the 24-hour clock, in every zone zoneinfo knows."""
    for zone in sorted(available_timezones()):
        field = SiteDateTimeField(zone=zone)
        for local in ("1900-01-01T00:00", "9998-12-31T23:59"):
            try:
                moment = field.clean(local)
            except ValidationError as error:  # the clocks changed that minute (Indian/Cocos)
                assert error.code == "nonexistent_time", (zone, local)
                continue
            assert format_site_time(moment, zone)
            assert to_site_time(due_at(moment), zone) > to_site_time(moment, zone)
        with pytest.raises(ValidationError, match=OUT_OF_RANGE):
            field.clean("0001-01-01T00:00")


def test_the_filter_names_the_zone_and_never_shows_raw_iso():
    site = Site(code="101", time_zone="Asia/Shanghai")
    moment = utc(2026, 11, 24, 13, 2, 5, 123456)
    rendered = Template("{% load timefmt %}{{ t|site_time:site }}|{{ t|site_time }}").render(
        Context({"t": moment, "site": site})
    )
    assert rendered == "24 Nov 2026 21:02 CST|24 Nov 2026 13:02 UTC"
    assert format_site_time(None, site) == ""
    assert (
        format_site_time(utc(2026, 7, 1, 10, 0), "Asia/Ho_Chi_Minh") == "01 Jul 2026 17:00 UTC+07"
    )


# --- the randomization date is the site's date ------------------------------------------------


def test_a_shanghai_morning_randomization_is_dated_that_day_everywhere():
    """Randomized at 23:30 UTC on 1 March 2026 (07:30 on 2 March in Shanghai): the
    randomization date is 2 March for the subject's status, the visit calendar, the treatment
    rules, RECIST and PFS, OS, the edit checks' SQL and the SDTM DM and DS datasets."""
    moment = utc(2026, 3, 1, 23, 30)
    shanghai_day = date(2026, 3, 2)
    with mock.patch("django.utils.timezone.now", return_value=moment):
        site = make_site("131", time_zone="Asia/Shanghai")
        coordinator = make_user(Role.SITE_STAFF, site)
        subject = make_subject_in_arm(Arm.A, site, by=coordinator)
    assert subject.allocation.allocated_at == moment
    # one definition, in Python and in SQL
    assert randomization_selectors.randomization_date(subject) == shanghai_day
    assert randomization_selectors.randomization_date_of(subject.allocation) == shanghai_day
    annotated = Subject.objects.annotate(on=RandomizationDate("allocation")).get(pk=subject.pk)
    assert annotated.on == shanghai_day
    # the randomization service dated the subject's status with it
    assert (subject.status, subject.status_date) == (SubjectStatus.RANDOMIZED, shanghai_day)
    # the calendar: cycle 1 day 1 on the Shanghai date, and a dose the day before is refused
    calendar = treatment_selectors.subject_calendar(subject)
    assert calendar.randomization_date == shanghai_day
    assert calendar.of_kind(VisitKind.CYCLE)[0].target == shanghai_day
    with pytest.raises(ValidationError, match="before the randomization \\(2026-03-02\\)"):
        add_cycle(subject, 1, by=coordinator, day1=moment.date())
    add_cycle(subject, 1, by=coordinator, day1=shanghai_day)
    # RECIST (best overall response) and PFS / OS count from it
    assert randomization_selectors.randomization_dates([subject.pk]) == {subject.pk: shanghai_day}
    endpoints = {
        row.parameter: row
        for row in survival_selectors.time_to_event()
        if row.subject == subject.subject_identifier
    }
    assert endpoints["PFS"].start == endpoints["OS"].start == shanghai_day
    # SDTM: RFSTDTC and the randomization of DS
    dm = sdtm.Demographics()
    names = [column.name for column in dm.columns]
    rows = {r[3]: dict(zip(names, r, strict=True)) for r in dm.rows(None)}
    assert rows[subject.subject_identifier]["RFSTDTC"] == "2026-03-02"
    assert rows[subject.subject_identifier]["RFXSTDTC"] == "2026-03-02"  # cycle 1's doses
    ds = sdtm.Disposition()
    names = [column.name for column in ds.columns]
    randomized = [
        r[names.index("DSSTDTC")]
        for r in ds.rows(None)
        if r[names.index("DSDECOD")] == "RANDOMIZED"
    ]
    assert set(randomized) == {"2026-03-02"}  # every subject randomized at that moment
