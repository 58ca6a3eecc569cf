"""End of treatment, survival follow-up and end of study: the rules a site meets, the subject's
status they drive, and the PFS/OS computed from the CRFs."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from core.errors import AccessDenied, DomainError
from core.roles import Role
from randomization.arms import Arm
from subjects.models import Subject, SubjectStatus
from survival import selectors, services
from survival.models import (
    DeathCause,
    EndOfStudyReason,
    EndOfTreatmentReason,
    SubsequentTherapy,
    VitalStatus,
)

from .builders import make_site, make_user
from .builders.survival import (
    end_treatment,
    follow_up,
    randomized_days_ago,
    record_death,
    study_day,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def patient(site, coordinator):
    return randomized_days_ago(Arm.A, site, 300, by=coordinator)


def fresh(subject):
    return Subject.objects.get(pk=subject.pk)


def test_end_of_treatment_moves_a_randomized_subject_to_treatment_ended(patient, coordinator):
    eot = end_treatment(patient, by=coordinator, day=85)
    subject = fresh(patient)
    assert subject.status == SubjectStatus.TREATMENT_ENDED
    assert subject.status_date == eot.last_dose_date == study_day(patient, 85)
    assert eot.history.first().history_user == coordinator


def test_end_of_treatment_for_toxicity_needs_the_subjects_adverse_event(patient, coordinator):
    with pytest.raises(ValidationError) as refused:
        end_treatment(patient, by=coordinator, day=85, why=EndOfTreatmentReason.TOXICITY)
    assert "adverse event" in str(refused.value)
    assert fresh(patient).status == SubjectStatus.RANDOMIZED


def test_other_reason_needs_its_text(patient, coordinator):
    with pytest.raises(ValidationError, match="other reason"):
        end_treatment(patient, by=coordinator, day=85, why=EndOfTreatmentReason.OTHER)
    eot = end_treatment(
        patient, by=coordinator, day=85, why=EndOfTreatmentReason.OTHER, reason_other="Moved"
    )
    assert eot.reason_other == "Moved"


def test_dates_before_randomization_or_in_the_future_are_refused(patient, coordinator):
    with pytest.raises(ValidationError, match="before randomization"):
        end_treatment(patient, by=coordinator, day=0)
    with pytest.raises(ValidationError, match="future"):
        end_treatment(patient, by=coordinator, day=400)


def test_end_of_treatment_is_recorded_once_and_corrected_with_a_reason(patient, coordinator):
    eot = end_treatment(patient, by=coordinator, day=85)
    with pytest.raises(DomainError, match="already recorded"):
        end_treatment(patient, by=coordinator, day=86)
    with pytest.raises(DomainError, match="reason for change"):
        services.update_end_of_treatment(
            eot, user=coordinator, reason="", last_dose_date=study_day(patient, 86)
        )
    services.update_end_of_treatment(
        eot, user=coordinator, reason="Typo", last_dose_date=study_day(patient, 86)
    )
    assert eot.last_dose_date == study_day(patient, 86)


def test_only_site_staff_of_the_site_and_only_for_randomized_subjects(
    patient, other_coordinator, data_manager, subject, coordinator
):
    for user in (other_coordinator, data_manager):
        with pytest.raises(AccessDenied):
            end_treatment(patient, by=user, day=85)
    with pytest.raises(DomainError, match="not randomized"):
        services.record_follow_up(
            subject,
            user=coordinator,
            contact_date=subject.consent_date,
            vital_status=VitalStatus.ALIVE,
            last_known_alive_date=subject.consent_date,
        )


def test_follow_up_contacts_are_numbered_and_keep_their_therapies(patient, coordinator):
    end_treatment(patient, by=coordinator, day=85)
    first = follow_up(patient, by=coordinator, day=150)
    second = follow_up(
        patient,
        by=coordinator,
        day=230,
        therapies=[{"agent": "Lenvatinib", "start_date": study_day(patient, 160)}],
    )
    assert (first.contact_number, second.contact_number) == (1, 2)
    assert [t.agent for t in second.therapies.all()] == ["Lenvatinib"]
    # A correction replaces the list: one removed, one added, each in the audit trail.
    services.update_follow_up(
        second,
        user=coordinator,
        reason="Wrong agent",
        therapies=[{"agent": "Regorafenib", "start_date": study_day(patient, 170)}],
    )
    assert [t.agent for t in second.therapies.all()] == ["Regorafenib"]
    assert SubsequentTherapy.history.filter(follow_up_id=second.pk).count() == 3


def test_follow_up_rules(patient, coordinator):
    with pytest.raises(ValidationError, match="after the date of contact"):
        follow_up(
            patient,
            by=coordinator,
            day=150,
            status=VitalStatus.LOST,
            last_known_alive_date=study_day(patient, 151),
        )
    with pytest.raises(ValidationError, match="alive at the contact"):
        follow_up(patient, by=coordinator, day=150, last_known_alive_date=study_day(patient, 140))
    with pytest.raises(ValidationError, match="agent and the start date"):
        follow_up(patient, by=coordinator, day=150, therapies=[{"agent": "Lenvatinib"}])
    with pytest.raises(ValidationError, match="after the date of contact"):
        follow_up(
            patient,
            by=coordinator,
            day=150,
            therapies=[{"agent": "TACE", "start_date": study_day(patient, 151)}],
        )


def test_death_at_end_of_study_moves_the_subject_to_died(patient, coordinator):
    end_treatment(patient, by=coordinator, day=85)
    follow_up(patient, by=coordinator, day=150)
    eos = record_death(patient, by=coordinator, day=200)
    subject = fresh(patient)
    assert subject.status == SubjectStatus.DIED
    assert subject.status_date == eos.death_date == study_day(patient, 200)


def test_death_needs_its_date_and_cause(patient, coordinator):
    with pytest.raises(ValidationError) as refused:
        services.record_end_of_study(
            patient,
            user=coordinator,
            end_date=study_day(patient, 200),
            end_reason=EndOfStudyReason.DEATH,
        )
    assert set(refused.value.message_dict) == {"death_date", "death_cause"}
    with pytest.raises(ValidationError, match="adverse event that caused"):
        record_death(patient, by=coordinator, day=200, cause=DeathCause.ADVERSE_EVENT)


def test_death_before_the_last_known_alive_date_is_refused(patient, coordinator):
    follow_up(patient, by=coordinator, day=150)
    with pytest.raises(ValidationError, match="last known alive"):
        record_death(patient, by=coordinator, day=140)
    assert fresh(patient).status == SubjectStatus.RANDOMIZED


def test_after_death_no_contact_says_alive_nor_after_the_death(patient, coordinator):
    record_death(patient, by=coordinator, day=200)
    with pytest.raises(ValidationError, match="not alive"):
        follow_up(patient, by=coordinator, day=210)
    with pytest.raises(ValidationError, match="after the date of death"):
        follow_up(
            patient,
            by=coordinator,
            day=210,
            status=VitalStatus.DEAD,
            last_known_alive_date=study_day(patient, 205),
        )
    contact = follow_up(
        patient,
        by=coordinator,
        day=210,
        status=VitalStatus.DEAD,
        last_known_alive_date=study_day(patient, 199),
    )
    assert contact.vital_status == VitalStatus.DEAD


def test_a_subject_who_died_of_a_fatal_ae_keeps_that_date(patient, coordinator):
    from subjects import services as subject_services

    subject_services.change_status(
        patient,
        SubjectStatus.DIED,
        user=coordinator,
        reason="Died",
        on_date=study_day(patient, 100),
    )
    with pytest.raises(ValidationError, match="the date of death must be the same"):
        record_death(patient, by=coordinator, day=101)
    with pytest.raises(ValidationError, match="the end of study reason is death"):
        services.record_end_of_study(
            patient,
            user=coordinator,
            end_date=study_day(patient, 120),
            end_reason=EndOfStudyReason.LOST,
        )
    record_death(patient, by=coordinator, day=100)
    assert fresh(patient).status_date == study_day(patient, 100)


@pytest.mark.parametrize(
    "why, status",
    [
        (EndOfStudyReason.CONSENT_WITHDRAWN, SubjectStatus.WITHDRAWN),
        (EndOfStudyReason.LOST, SubjectStatus.WITHDRAWN),
        (EndOfStudyReason.STUDY_END, SubjectStatus.COMPLETED),
    ],
)
def test_end_of_study_reasons_drive_the_status(patient, coordinator, why, status):
    services.record_end_of_study(
        patient, user=coordinator, end_date=study_day(patient, 250), end_reason=why
    )
    assert (fresh(patient).status, fresh(patient).status_date) == (
        status,
        study_day(patient, 250),
    )


def test_end_of_study_cannot_contradict_a_final_status(patient, coordinator):
    services.record_end_of_study(
        patient,
        user=coordinator,
        end_date=study_day(patient, 250),
        end_reason=EndOfStudyReason.STUDY_END,
    )
    eos = selectors.end_of_study(patient)
    with pytest.raises(ValidationError, match="completed"):
        services.update_end_of_study(
            eos,
            user=coordinator,
            reason="Was a withdrawal",
            end_reason=EndOfStudyReason.CONSENT_WITHDRAWN,
        )


def test_pfs_and_os_from_the_crfs(site, coordinator, patient):
    """Death without progression: PFS and OS events on the date of death; a subject without
    any tumor assessment alive at a follow-up: PFS censored at randomization, OS at the
    contact."""
    record_death(patient, by=coordinator, day=61)
    alive = randomized_days_ago(Arm.B, site, 300, by=coordinator)
    follow_up(alive, by=coordinator, day=120)
    rows = {(r.subject, r.parameter): r for r in selectors.time_to_event()}
    dead_pfs = rows[(patient.subject_identifier, "PFS")]
    dead_os = rows[(patient.subject_identifier, "OS")]
    assert (dead_pfs.event, dead_pfs.days, dead_os.event, dead_os.days) == (True, 61, True, 61)
    alive_pfs = rows[(alive.subject_identifier, "PFS")]
    alive_os = rows[(alive.subject_identifier, "OS")]
    assert (alive_pfs.event, alive_pfs.days) == (False, 1)
    assert (alive_os.event, alive_os.days) == (False, 120)
    # Scoped: site staff of another site see none of them.
    other = make_user(Role.SITE_STAFF, make_site())
    assert selectors.time_to_event(other) == []


def test_the_data_cutoff_applies(patient, coordinator):
    record_death(patient, by=coordinator, day=61)
    cutoff = study_day(patient, 30)
    rows = {r.parameter: r for r in selectors.time_to_event(cutoff=cutoff)}
    # The death after the cut-off is not seen, but the subject was alive on the cut-off.
    assert (rows["OS"].event, rows["OS"].end) == (False, cutoff)
    assert (rows["PFS"].event, rows["PFS"].end) == (False, services.randomization_date(patient))
    assert cutoff - timedelta(days=29) == services.randomization_date(patient)


# --- edit checks ---------------------------------------------------------------------------------


def _found(code, subject):
    from core.edit_checks import Scope
    from queries.checks import CHECKS_BY_CODE

    return CHECKS_BY_CODE[code].find(Scope(subject_ids=[subject.pk]))


@pytest.fixture
def dead(patient, coordinator):
    """A contact on day 150, a death on day 200: no survival check fires."""
    follow_up(patient, by=coordinator, day=150)
    eos = record_death(patient, by=coordinator, day=200)
    for code in ("SURV-001", "SURV-002", "SURV-003", "SURV-004"):
        assert not _found(code, patient), code
    return eos


def test_surv001_death_date_differs_from_the_subjects_status(patient, dead):
    from .builders.tamper import behind_the_audit

    # The subject's status date corrected behind the services: the end of study disagrees.
    behind_the_audit(Subject).filter(pk=patient.pk).update(status_date=study_day(patient, 199))
    [violation] = _found("SURV-001", patient)
    assert (violation.object_id, violation.field) == (dead.pk, "death_date")
    assert "status is died since" in violation.message


def test_surv002_death_date_differs_from_a_fatal_ae(patient, dead):
    from adverse_events.models import AdverseEvent, AeOutcome, CtcaeTerm
    from adverse_events.starter_terms import load_starter_terms

    from .builders.tamper import behind_the_audit

    load_starter_terms()
    ae = AdverseEvent(
        subject=patient,
        ae_number=1,
        term=CtcaeTerm.objects.get(term="Hypertension"),
        grade=5,
        onset_date=study_day(patient, 190),
        end_date=study_day(patient, 199),
        outcome=AeOutcome.FATAL,
        death_date=study_day(patient, 199),
        serious=True,
        sc_death=True,
    )
    behind_the_audit(AdverseEvent).bulk_create([ae])
    [violation] = _found("SURV-002", patient)
    assert violation.object_id == dead.pk and "fatal (grade 5)" in violation.message


def test_surv003_death_without_a_death_date(patient, dead):
    from .builders.tamper import behind_the_audit

    behind_the_audit(type(dead)).filter(pk=dead.pk).update(death_date=None)
    assert [v.object_id for v in _found("SURV-003", patient)] == [dead.pk]


def test_surv004_last_known_alive_after_the_death(patient, dead):
    from .builders.tamper import behind_the_audit

    behind_the_audit(type(dead)).filter(pk=dead.pk).update(death_date=study_day(patient, 140))
    [alive] = _found("SURV-004", patient)
    assert alive.field == "last_known_alive_date" and "after the date of death" in alive.message


# --- ADTTE ---------------------------------------------------------------------------------------


def test_adtte_for_the_statistician_and_the_sponsor_only(
    patient, coordinator, sponsor, data_manager
):
    from survival.sdtm import TimeToEvent

    statistician = make_user(Role.STATISTICIAN, username="stats")
    record_death(patient, by=coordinator, day=61)
    dataset = TimeToEvent()
    names = [c.name for c in dataset.columns]
    rows = [dict(zip(names, row, strict=True)) for row in dataset.rows(statistician)]
    rows = [r for r in rows if r["USUBJID"].endswith(f"-{patient.subject_identifier}")]
    assert [(r["PARAMCD"], r["AVAL"], r["CNSR"], r["EVNTDESC"], r["CNSDTDSC"]) for r in rows] == [
        ("PFS", 61, 0, "Death", None),
        ("OS", 61, 0, "Death", None),
    ]
    assert rows[0]["USUBJID"].endswith(patient.subject_identifier)
    assert rows[0]["STARTDT"] == services.randomization_date(patient).isoformat()
    assert rows[0]["TRT01P"] == Arm.A.label.upper()
    assert list(dataset.rows(sponsor)) == list(dataset.rows(statistician))
    assert list(dataset.rows(data_manager)) == []


# --- pages ---------------------------------------------------------------------------------------


def test_the_endpoints_report_is_for_statisticians_only(
    client, patient, coordinator, sponsor, data_manager, site
):
    record_death(patient, by=coordinator, day=61)
    for user in (coordinator, sponsor, data_manager, make_user(Role.MONITOR, site)):
        client.force_login(user)
        assert client.get("/endpoints/").status_code == 403, user
    client.force_login(make_user(Role.STATISTICIAN, username="stats"))
    page = client.get("/endpoints/")
    html = page.content.decode()
    assert page.status_code == 200
    assert html.count("<svg") == 2 and "Numbers at risk" in html
    assert 'id="os-summary"' in html and "<polyline" in html


def test_site_staff_record_the_end_of_treatment_on_the_form(client, patient, coordinator):
    client.force_login(coordinator)
    url = f"/subjects/{patient.subject_identifier}/end-of-treatment/"
    form = client.get(url)
    assert form.status_code == 200 and 'name="last_dose_date"' in form.content.decode()
    token = form.context["form"]["submission"].value()
    refused = client.post(
        url,
        {"last_dose_date": study_day(patient, 85), "end_reason": "toxicity", "submission": token},
    )
    assert refused.status_code == 200
    assert "choose the adverse event" in refused.content.decode()
    done = client.post(
        url,
        {
            "last_dose_date": study_day(patient, 85),
            "end_reason": "progression",
            "submission": token,
        },
    )
    assert done.status_code == 302
    assert fresh(patient).status == SubjectStatus.TREATMENT_ENDED
    page = client.get(patient.get_absolute_url()).content.decode()
    assert "End of treatment and survival" in page and "disease progression" in page
    # Corrected on the same page, with a reason.
    edit = client.get(url)
    assert 'name="reason"' in edit.content.decode()


def test_other_sites_get_a_404_and_monitors_a_read_only_page(
    client, patient, coordinator, other_coordinator, site
):
    end_treatment(patient, by=coordinator, day=85)
    follow_up(patient, by=coordinator, day=150)
    url = f"/subjects/{patient.subject_identifier}/end-of-treatment/"
    client.force_login(other_coordinator)
    assert client.get(url).status_code == 404
    client.force_login(make_user(Role.MONITOR, site))
    page = client.get(url).content.decode()
    assert "Read-only" in page and '<form method="post" class="crf"' not in page
    contact = client.get(f"/subjects/{patient.subject_identifier}/survival-follow-up/1/")
    assert contact.status_code == 200 and "Read-only" in contact.content.decode()
    # No record yet and no right to enter: back to the subject with a sentence.
    assert client.get(f"/subjects/{patient.subject_identifier}/end-of-study/").status_code == 302


def test_follow_up_form_with_a_therapy_row(client, patient, coordinator):
    client.force_login(coordinator)
    url = f"/subjects/{patient.subject_identifier}/survival-follow-up/new/"
    form = client.get(url)
    token = form.context["form"]["submission"].value()
    day150 = study_day(patient, 150)
    response = client.post(
        url,
        {
            "contact_date": day150,
            "vital_status": "alive",
            "last_known_alive_date": day150,
            "agent_1": "Lenvatinib",
            "start_1": study_day(patient, 120),
            "submission": token,
        },
    )
    assert response.status_code == 302
    [contact] = selectors.subject_follow_ups(patient)
    assert [t.agent for t in contact.therapies.all()] == ["Lenvatinib"]


# --- the exports: ODM XSD and Dataset-JSON schema -----------------------------------------------


def test_the_survival_forms_pass_the_odm_xsd_and_the_dataset_json_schema(
    site, coordinator, data_manager, reference_file
):
    import json

    import jsonschema
    from lxml import etree

    from exports import dataset_json

    from .builders.survival import add_survival_records
    from .test_exports_dataset_json import _read_schema, check_values, text_of
    from .test_exports_odm import NS, XSD, _schema, export, valid

    dead, withdrawn = add_survival_records(site, by=coordinator)
    root = valid(export(data_manager), _schema(reference_file(XSD)))
    forms = {f.get("FormOID") for f in root.iterfind(".//o:FormData", NS)}
    assert {"F.EOT", "F.SFU", "F.EOS"} <= forms
    assert root.xpath("//o:ItemGroupData[@ItemGroupOID='IG.SFU.SUBSEQUENT_THERAPY']", namespaces=NS)
    assert etree.tostring(root).count(b"Lenvatinib") >= 1

    schema = _read_schema(reference_file("dataset-json1-1/dataset.schema.json"))
    validator = jsonschema.validators.validator_for(schema)(schema)
    statistician = make_user(Role.STATISTICIAN, username="stats")
    names = [d.name for d in dataset_json.datasets()]
    mine = [n for n in names if n.split("_")[0] in ("EOT", "SFU", "EOS", "ADTTE")]
    assert {"EOT", "SFU", "EOS", "ADTTE"} <= set(mine)
    for name in mine:
        document = json.loads(text_of(dataset_json.dataset_named(name), statistician))
        validator.validate(document)
        check_values(document)
        assert document["rows"], name
