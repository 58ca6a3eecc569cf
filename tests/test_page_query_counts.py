"""Every page renders with a number of SQL queries that does not grow with the study.

Each page of the site app and the dashboard is rendered for an investigator, a monitor and a data
manager, and the data managers' admin pages (the changelist of every project model, the change
pages of the records below) for a data manager: first on a small study (five subjects in the
states the pages need, one adverse event, a query on each record whose page shows queries, one
change of each kind of record), then after the study has grown (17 subjects at two sites, AEs
with causality rows and follow-ups, answered and reopened queries, longer audit trails; more
treatment cycles and IV doses, sorafenib periods, survival contacts with subsequent therapies,
tumor assessments). The statisticians' endpoints report is rendered for a statistician. Each
page must read with the same number of queries at both sizes: a page that reads a row at a time
fails, and the failure names the statements it added.

Each page must also read no more rows when the study grows by records it does not show
(``test_no_page_reads_more_rows_for_a_bigger_study``: the rows every SELECT returned, with every
list a page of two rows), so that a page that sums the study in Python fails a test, not a
timing.

The pages are found by walking the URLconf (as ``test_access`` does): a page added later must get
a URL here (``test_every_site_page_is_measured``), and every admin page of a project model is
measured.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from adverse_events import services as ae_services
from adverse_events.models import ActionTaken, AdverseEvent, Causality, CtcaeTerm
from adverse_events.starter_terms import load_starter_terms
from core.registry import project_app_labels
from core.roles import Role
from efficacy import services as efficacy_services
from efficacy.models import TargetLesion
from eligibility import services as eligibility_services
from eligibility.models import EligibilityAssessment
from queries import services as query_services
from queries.models import DataQuery, ResponseReason
from randomization.arms import Arm
from subjects import selectors as subject_selectors
from subjects import services as subject_services
from subjects.models import Subject
from survival import services as survival_services
from survival.models import EndOfTreatment, SurvivalFollowUp
from survival.selectors import end_of_study
from treatment import services as treatment_services
from treatment.models import Cycle, DoseLevel, OralDosingPeriod

from .builders import (
    days_ago,
    eligible_data,
    ensure_active_list,
    make_eligible_assessment,
    make_randomized_subject,
    make_subject,
    make_user,
)
from .builders.efficacy import add_assessment, add_baseline
from .builders.eligibility import make_prior_therapy_rows
from .builders.survival import add_survival_crfs, end_treatment, follow_up, study_day
from .builders.treatment import (
    add_cycle,
    add_oral_period,
    full_doses,
    make_subject_randomized_days_ago,
    randomized_on,
)

pytestmark = pytest.mark.django_db

# Not the site app: the admin (measured by its models, ``admin_pages``) and the sponsor API.
NOT_SITE_PREFIXES = ("admin/", "api/")
# Named URL patterns of the site app that are not pages (nothing is rendered on a GET).
NOT_PAGES = {
    "logout": "POST only",
    "queries:act": "a transition, POST only: a GET is sent back to the query's page",
    "monitoring:study_lock": "POST only",
    "session_status": "JSON for the idle-session warning, read from the session alone",
    "session_keep_alive": "POST only (JSON)",
}
# Pages for the statisticians only (anyone else: a 403): rendered for a statistician alone.
STATISTICIAN_PAGES = {"survival:endpoints"}


def _walk(patterns, namespace="", prefix=""):
    """(URL name with its namespace, route) of every named pattern."""
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, entry.namespace or namespace, route)
        elif isinstance(entry, URLPattern) and entry.name:
            yield (f"{namespace}:{entry.name}" if namespace else entry.name), route


def site_page_names() -> set[str]:
    """Every named URL pattern outside the admin and the API."""
    return {
        name
        for name, route in _walk(get_resolver().url_patterns)
        if not route.startswith(NOT_SITE_PREFIXES)
    }


# --- the study ----------------------------------------------------------------------------------


@dataclass
class Study:
    """The records whose pages are measured, and the people who look at them."""

    site: object
    other_site: object
    investigator: object  # enters data and signs at ``site``
    monitor: object
    data_manager: object
    other_investigator: object
    fresh: Subject  # consented, no eligibility CRF yet (the new CRF)
    unsigned: Subject  # a saved CRF, not signed (the sign and screen-failure pages)
    eligible: Subject  # signed eligible, not randomized (the randomization preview)
    randomized: Subject  # the subject with AEs, queries and the longest audit trail
    ae: AdverseEvent  # its AE 1, a serious one
    query: DataQuery  # a query on that AE
    statistician: object = None
    arm_a: Subject | None = None  # randomized 150 days ago: treatment cycles with IV doses
    arm_b: Subject | None = None  # 200 days ago: sorafenib, end of treatment, follow-ups
    ended: Subject | None = None  # every survival CRF, an end of study (a death)
    oral_period: object = None  # arm_b's first sorafenib period


def _causality(subject, assessment=Causality.POSSIBLE, action=ActionTaken.DOSE_NOT_CHANGED):
    return {
        drug: {"causality": assessment, "action_taken": action}
        for drug in ae_services.study_drugs_of(subject)
    }


def _record_ae(subject, user, term, **fields) -> AdverseEvent:
    return ae_services.record_adverse_event(
        subject,
        user=user,
        term=CtcaeTerm.objects.get(term=term),
        grade=fields.pop("grade", 2),
        onset_date=fields.pop("onset_date", days_ago(0)),
        ongoing=True,
        outcome="not_recovered",
        causality=_causality(subject),
        **fields,
    )


def _follow_up(ae: AdverseEvent, user, n: int) -> None:
    """``n`` follow-ups of ``ae``: the grade and the causality change (audit trail rows)."""
    for i in range(n):
        ae_services.update_adverse_event(
            ae,
            user=user,
            reason=f"Follow-up visit {i + 1}",
            grade=3 if ae.grade == 2 else 2,
            causality=_causality(
                ae.subject, Causality.PROBABLE if i % 2 == 0 else Causality.UNLIKELY
            ),
        )


def _raise(record, study: Study, field_name: str, *, answer: bool = False) -> DataQuery:
    query = query_services.raise_query(
        record,
        field=field_name,
        message="Please check against the source.",
        user=study.data_manager,
    )
    if answer:
        site = query_services.subject_of(record).site
        query_services.answer_query(
            query,
            user=study.investigator if site == study.site else study.other_investigator,
            text="Checked: the value is right.",
            reason=ResponseReason.CONFIRMED_CORRECT,
        )
    return query


def _discussion(query: DataQuery, study: Study, rounds: int) -> None:
    """The site answers, data management reopens: ``rounds`` times (the query's thread)."""
    for i in range(rounds):
        query_services.answer_query(
            query,
            user=study.investigator,
            text=f"Answer {i + 1}.",
            reason=ResponseReason.OTHER,
        )
        query_services.reopen_query(query, user=study.data_manager, text=f"Not yet {i + 1}.")


def _change_demographics(subject, user, initials: str) -> None:
    subject = Subject.objects.get(pk=subject.pk)
    subject_services.update_demographics(subject, user=user, reason="Typo", initials=initials)


def _correct_crf(subject, user, *, ecog: int, end_date) -> None:
    """A correction of the CRF, with two prior therapy rows (the second ending ``end_date``)."""
    eligibility_services.save_assessment(
        subject,
        user=user,
        data=eligible_data(subject, ecog=ecog, prior_systemic_therapy=True),
        reason="Corrected from the source",
        prior_therapies=make_prior_therapy_rows({}, {"setting": "advanced", "end_date": end_date}),
    )


def _assessment(subject) -> EligibilityAssessment:
    return EligibilityAssessment.objects.get(subject=subject)


def build_small_study(site, other_site) -> Study:
    load_starter_terms()
    ensure_active_list()
    investigator = make_user(Role.INVESTIGATOR, site)
    other_investigator = make_user(Role.INVESTIGATOR, other_site)
    data_manager = make_user(Role.DATA_MANAGER, is_staff=True)
    fresh = make_subject(site, by=investigator)
    unsigned = make_subject(site, by=investigator, consent_date=days_ago(10))
    make_eligible_assessment(unsigned, by=investigator, sign=False)
    eligible = make_subject(site, by=investigator, consent_date=days_ago(10))
    make_eligible_assessment(eligible, by=investigator, investigator=investigator)
    randomized = make_randomized_subject(site, by=investigator, investigator=investigator)
    ae = _record_ae(
        randomized,
        investigator,
        "Hypertension",
        serious=True,
        sc_hospitalization=True,
        site_aware_at=timezone.now(),
    )
    study = Study(
        site=site,
        other_site=other_site,
        investigator=investigator,
        monitor=make_user(Role.MONITOR, site),
        data_manager=data_manager,
        other_investigator=other_investigator,
        fresh=fresh,
        unsigned=unsigned,
        eligible=eligible,
        randomized=randomized,
        ae=ae,
        query=None,
    )
    # One query on each record whose page shows queries (its CRF page marks the field).
    study.query = _raise(ae, study, "grade")
    _raise(randomized, study, "sex", answer=True)
    _raise(_assessment(unsigned), study, "ecog", answer=True)
    _raise(_assessment(randomized), study, "ecog")
    # One change of each kind of record (the audit trails read the values before a change).
    _follow_up(ae, investigator, 1)
    _change_demographics(randomized, investigator, "AB")
    for end in (300, 250):
        _correct_crf(unsigned, investigator, ecog=1, end_date=days_ago(end))
    make_randomized_subject(other_site, by=other_investigator, investigator=other_investigator)
    _add_crfs_after_randomization(study)
    return study


def _add_crfs_after_randomization(study: Study) -> None:
    """Treatment, RECIST and survival records: the small study has one of each."""
    inv = study.investigator
    study.statistician = make_user(Role.STATISTICIAN)
    study.arm_a = make_subject_randomized_days_ago(Arm.A, study.site, 150, by=inv)
    add_cycle(study.arm_a, 1, by=inv)
    study.arm_b = make_subject_randomized_days_ago(Arm.B, study.site, 200, by=inv)
    add_cycle(study.arm_b, 1, by=inv)
    study.oral_period = add_oral_period(
        study.arm_b,
        by=inv,
        start=randomized_on(study.arm_b),
        stop=randomized_on(study.arm_b) + timedelta(days=13),
    )
    end_treatment(study.arm_b, by=inv, day=90)
    follow_up(study.arm_b, by=inv, day=100)
    study.ended = add_survival_crfs(make_randomized_subject(study.site, by=inv), by=inv)
    add_baseline(study.randomized, by=inv)
    add_assessment(
        study.randomized,
        by=inv,
        days_ago_=70,
        measurements={1: 30, 2: 15},
        investigator_response="PR",
    )
    _change_crfs(study, 1)


def _change_crfs(study: Study, round_: int) -> None:
    """A change of each treatment, survival and RECIST record shown with its audit trail."""
    inv, why = study.investigator, f"Corrected from the source ({round_})"
    cycle = Cycle.objects.get(subject=study.arm_a, number=1)
    weight = f"{70 + round_}.0"
    treatment_services.save_cycle(
        study.arm_a,
        user=inv,
        reason=why,
        cycle=cycle,
        number=1,
        day1_date=cycle.day1_date,
        weight_kg=weight,
        doses=full_doses(weight, cycle.day1_date),
    )
    period = OralDosingPeriod.objects.get(pk=study.oral_period.pk)
    treatment_services.save_oral_period(
        study.arm_b,
        user=inv,
        reason=why,
        period=period,
        dose_level=period.dose_level,
        start_date=period.start_date,
        stop_date=period.start_date + timedelta(days=12 + round_ % 2),
    )
    survival_services.update_end_of_treatment(
        EndOfTreatment.objects.get(subject=study.arm_b),
        user=inv,
        reason=why,
        last_dose_date=study_day(study.arm_b, 90 - round_ % 2),
    )
    survival_services.update_follow_up(
        SurvivalFollowUp.objects.get(subject=study.arm_b, contact_number=1),
        user=inv,
        reason=why,
        therapies=[{"agent": f"Lenvatinib {round_}", "start_date": study_day(study.arm_b, 95)}],
    )
    efficacy_services.update_target_lesion(
        TargetLesion.objects.get(subject=study.randomized, number=1),
        user=inv,
        reason=why,
        location=f"Segment VIII ({round_})",
    )
    cause, other = ("other", "Hepatic failure") if round_ % 2 else ("progression", "")
    survival_services.update_end_of_study(
        end_of_study(study.ended), user=inv, reason=why, death_cause=cause, death_cause_other=other
    )


def _grow_crfs_after_randomization(study: Study) -> None:
    """More cycles and doses, sorafenib periods, follow-up contacts with subsequent therapies,
    tumor assessments, and a longer audit trail of the end of study."""
    inv = study.investigator
    for number in (2, 3, 4):
        add_cycle(study.arm_a, number, by=inv)
        add_cycle(study.arm_b, number, by=inv)
    start = randomized_on(study.arm_b)
    add_oral_period(
        study.arm_b,
        by=inv,
        start=start + timedelta(days=14),
        stop=start + timedelta(days=40),
        level=DoseLevel.REDUCED_400,
        why="Hand-foot skin reaction grade 2",
    )
    add_oral_period(
        study.arm_b, by=inv, start=start + timedelta(days=41), stop=start + timedelta(days=88)
    )
    for day in (110, 120, 130):
        therapies = [
            {"agent": agent, "start_date": study_day(study.arm_b, day - 5)}
            for agent in ("Lenvatinib", "Regorafenib")
        ]
        follow_up(study.arm_b, by=inv, day=day, therapies=therapies)
    for days, sizes, response in ((45, {1: 25, 2: 10}, "PR"), (20, {1: 24, 2: 9}, "PR")):
        add_assessment(
            study.randomized,
            by=inv,
            days_ago_=days,
            measurements=sizes,
            investigator_response=response,
        )
    for round_ in (2, 3):
        _change_crfs(study, round_)


def grow(study: Study, *, subjects: int = 10) -> None:
    """The study grows: every list, panel, thread and audit trail on the pages gets longer."""
    inv = study.investigator
    # More subjects at both sites, each with AEs (and their causality rows) and queries.
    for i in range(subjects):
        site, by = (study.site, inv) if i % 3 else (study.other_site, study.other_investigator)
        subject = make_randomized_subject(site, by=by, investigator=by)
        for term in ("Diarrhea", "Proteinuria"):
            _follow_up(_record_ae(subject, by, term), by, 1)
        _raise(subject, study, "sex", answer=True)
        _raise(_assessment(subject), study, "ecog")
    make_subject(study.site, by=inv)  # screening subjects waiting for a decision
    make_eligible_assessment(make_subject(study.site, by=inv), by=inv, sign=False)
    # The randomized subject: more AEs with follow-ups, queries, demographics changes.
    subject = study.randomized
    _follow_up(study.ae, inv, 4)
    for term in ("Diarrhea", "Proteinuria", "Epistaxis", "Weight loss", "Hypothyroidism"):
        ae = _record_ae(subject, inv, term)
        _follow_up(ae, inv, 2)
        _raise(ae, study, "grade", answer=True)
        _raise(ae, study, "onset_date")
    _discussion(study.query, study, 3)
    for name in ("outcome", "onset_date", ""):
        _raise(study.ae, study, name)
    for initials in ("ABC", "AC", "ACD"):
        _change_demographics(subject, inv, initials)
    for name in ("macrovascular_invasion", "lab_date", "hbsag"):
        _raise(_assessment(subject), study, name, answer=True)
    # The unsigned CRF: changed several times, prior therapy rows, queries on its fields.
    unsigned = study.unsigned
    for ecog, end in ((0, 200), (1, 150), (0, 100)):
        _correct_crf(unsigned, inv, ecog=ecog, end_date=days_ago(end))
    for name in ("lab_date", "encephalopathy", "ascites", "bclc_stage"):
        _raise(_assessment(unsigned), study, name, answer=name == "ascites")
    _grow_crfs_after_randomization(study)


# --- the pages ----------------------------------------------------------------------------------


def site_pages(study: Study) -> dict[str, list[str]]:
    """URL name -> the URLs of that page measured (one per state of the page worth measuring)."""

    def subject_url(name, subject, **kwargs):
        return reverse(name, kwargs={"identifier": subject.subject_identifier, **kwargs})

    randomized, ae, query = study.randomized, study.ae, study.query
    timeline = subject_url("subjects:detail", randomized)
    pages = {
        "login": [reverse("login")],
        "subjects:list": ["/subjects/", f"/subjects/?status=randomized&q={study.site.code}"],
        "subjects:register": [reverse("subjects:register")],
        "subjects:detail": [
            timeline,
            subject_url("subjects:detail", study.unsigned),
            *(f"{timeline}?record={label}" for label, _ in subject_selectors.audit_record_types()),
        ],
        "subjects:consent": [subject_url("subjects:consent", randomized)],
        "subjects:edit": [subject_url("subjects:edit", randomized)],
        "subjects:status": [subject_url("subjects:status", randomized)],
        "subjects:delete": [subject_url("subjects:delete", study.fresh)],
        "eligibility:detail": [
            subject_url("eligibility:detail", study.unsigned),
            subject_url("eligibility:detail", randomized),
        ],
        "eligibility:edit": [
            subject_url("eligibility:edit", study.fresh),  # the new CRF
            subject_url("eligibility:edit", study.unsigned),  # a saved one
            subject_url("eligibility:edit", randomized),  # signed, with queries
        ],
        "eligibility:sign": [subject_url("eligibility:sign", study.unsigned)],
        "eligibility:screen_failure": [subject_url("eligibility:screen_failure", study.unsigned)],
        "randomization:randomize": [
            subject_url("randomization:randomize", study.eligible),  # the preview
            subject_url("randomization:randomize", randomized),  # the allocation
        ],
        "adverse_events:sae_due": [reverse("adverse_events:sae_due")],
        "adverse_events:list": [subject_url("adverse_events:list", randomized)],
        "adverse_events:new": [subject_url("adverse_events:new", randomized)],
        "adverse_events:edit": [subject_url("adverse_events:edit", randomized, number=1)],
        "adverse_events:report": [subject_url("adverse_events:report", randomized, number=1)],
        "queries:inbox": ["/queries/", "/queries/?status=site", f"/queries/?site={study.site.pk}"],
        "queries:raise": [
            f"{reverse('queries:raise')}?record={ae_record(ae)}&field=grade",
        ],
        "queries:bulk": [reverse("queries:bulk"), f"{reverse('queries:bulk')}?status=randomized"],
        "queries:report": [reverse("queries:report")],
        "queries:detail": [reverse("queries:detail", args=[query.pk])],
        "dashboard:home": ["/dashboard/", f"/dashboard/?site={study.site.pk}"],
        # Treatment: the calendar of each arm, a new cycle, cycle 1 (its doses), sorafenib.
        "treatment:calendar": [
            subject_url("treatment:calendar", study.arm_a),
            subject_url("treatment:calendar", study.arm_b),
        ],
        "treatment:cycle_new": [subject_url("treatment:cycle_new", study.arm_a)],
        "treatment:cycle": [subject_url("treatment:cycle", study.arm_a, number=1)],
        "treatment:oral_period_new": [subject_url("treatment:oral_period_new", study.arm_b)],
        "treatment:oral_period": [
            subject_url("treatment:oral_period", study.arm_b, pk=study.oral_period.pk)
        ],
        # Survival: end of treatment, the follow-up contacts, the end of study, the endpoints.
        "survival:end_of_treatment": [subject_url("survival:end_of_treatment", study.arm_b)],
        "survival:follow_up_new": [subject_url("survival:follow_up_new", study.arm_b)],
        "survival:follow_up": [subject_url("survival:follow_up", study.arm_b, number=1)],
        "survival:end_of_study": [subject_url("survival:end_of_study", study.ended)],
        "survival:endpoints": [reverse("survival:endpoints")],
        # RECIST: the lesions and the assessments of the randomized subject.
        "efficacy:home": [subject_url("efficacy:home", randomized)],
        "efficacy:target_new": [subject_url("efficacy:target_new", randomized)],
        "efficacy:target_edit": [subject_url("efficacy:target_edit", randomized, number=1)],
        "efficacy:non_target_new": [subject_url("efficacy:non_target_new", randomized)],
        "efficacy:non_target_edit": [subject_url("efficacy:non_target_edit", randomized, number=1)],
        "efficacy:assessment_new": [subject_url("efficacy:assessment_new", randomized)],
        "efficacy:assessment": [subject_url("efficacy:assessment", randomized, number=1)],
    }
    if "monitoring:worklist" in site_page_names():  # source data verification, locks
        ae_type = ContentType.objects.get_for_model(AdverseEvent).pk
        pages |= {
            "monitoring:worklist": ["/monitoring/", f"/monitoring/?site={study.site.pk}"],
            "monitoring:lock_console": [
                reverse("monitoring:lock_console"),
                f"{reverse('monitoring:lock_console')}?site={study.site.pk}&page=2",
            ],
            "monitoring:verify": [reverse("monitoring:verify", args=[ae_type, ae.pk])],
            "monitoring:record_state": [reverse("monitoring:record_state", args=[ae_type, ae.pk])],
            "monitoring:casebook_state": [subject_url("monitoring:casebook_state", randomized)],
            "monitoring:sign_casebook": [subject_url("monitoring:sign_casebook", randomized)],
        }
    return pages


def ae_record(ae) -> str:
    """The ``record`` parameter of the "raise a query" page for ``ae``."""
    return f"{ContentType.objects.get_for_model(AdverseEvent).pk}:{ae.pk}"


def admin_pages(study: Study) -> dict[str, list[str]]:
    """The changelist of every project model in the admin (and the change page of the records
    the site pages show): the data managers' tool."""
    labels = set(project_app_labels())
    records = {
        Subject: study.randomized.pk,
        AdverseEvent: study.ae.pk,
        DataQuery: study.query.pk,
        EligibilityAssessment: _assessment(study.randomized).pk,
    }
    pages = {}
    for model in admin.site._registry:
        meta = model._meta
        if meta.app_label not in labels:
            continue
        name = f"admin:{meta.app_label}_{meta.model_name}"
        pages[f"{name}_changelist"] = [reverse(f"{name}_changelist")]
        if model in records:
            pages[f"{name}_change"] = [reverse(f"{name}_change", args=[records[model]])]
    return pages


@dataclass(frozen=True)
class Rendered:
    status: int
    sql: tuple[str, ...]
    rows: int = 0  # the rows every SELECT of the page returned


class RowCounter:
    """``connection.execute_wrapper``: the rows the SELECTs return (the cursor's row count:
    with server-side cursors off, every row of the result, read or not)."""

    def __init__(self):
        self.rows = 0

    def __call__(self, execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if sql.lstrip("( ").upper().startswith(("SELECT", "WITH")):
            self.rows += max(context["cursor"].rowcount or 0, 0)
        return result


def warm_up(client, users: dict, pages: dict[str, list[str]]) -> None:
    """Each URL rendered once before it is measured (the process-wide caches, e.g. content
    types, filled on a first render), by the first of ``users`` it is shown to: a cache a page
    fills for one user only would show as a difference between the two sizes."""
    waiting = [url for urls in pages.values() for url in urls]
    for user in users.values():
        client.force_login(user)
        waiting = [url for url in waiting if client.get(url).status_code != 200]


def measure(client, users: dict, pages: dict[str, list[str]], *, warm: bool) -> dict:
    """(user, URL) -> the status code and the SQL statements of each page; ``warm``: rendered
    once before (``warm_up``)."""
    if warm:
        warm_up(client, users, pages)
    rendered = {}
    for who, user in users.items():
        client.force_login(user)
        for urls in pages.values():
            for url in urls:
                counter = RowCounter()
                # The connection keeps the last 9,000 statements; a capture reads its own from
                # there, so a long measurement would otherwise find none.
                connection.queries_log.clear()
                with (
                    CaptureQueriesContext(connection) as captured,
                    connection.execute_wrapper(counter),
                ):
                    response = client.get(url)
                sql = tuple(q["sql"] for q in captured.captured_queries if counted(q["sql"]))
                rendered[who, url] = Rendered(response.status_code, sql, counter.rows)
    return rendered


# Not counted: savepoints (transaction control, not reads) and the session's save that moves the
# idle timeout on, at most once a minute whatever the page (``accounts.sessions``): a clock, not
# the data, decides when it comes.
NOT_COUNTED = re.compile(
    r'^(SAVEPOINT|RELEASE SAVEPOINT|ROLLBACK TO SAVEPOINT|UPDATE "django_session")'
)


def counted(sql: str) -> bool:
    return not NOT_COUNTED.match(sql)


def _shape(sql: str) -> str:
    """A statement without its values (ids, dates, the session key): what it reads."""
    return re.sub(r"'[^']*'|\b\d+\b", "?", sql)


def growth(small: dict, large: dict) -> list[str]:
    """The pages that read more for the bigger study, each with the statements it added."""
    found = []
    for key, before in small.items():
        after = large[key]
        if len(before.sql) == len(after.sql):
            continue
        added = Counter(map(_shape, after.sql)) - Counter(map(_shape, before.sql))
        lines = [f"  +{n} {statement[:200]}" for statement, n in added.items()]
        found.append(
            f"{key[0]} {key[1]}: {len(before.sql)} -> {len(after.sql)}\n" + "\n".join(lines)
        )
    return found


def report(small: dict, large: dict) -> None:
    """The figures, printed for ``pytest -s``."""
    for (who, url), before in small.items():
        print(
            f"{who:13} {before.status} {len(before.sql):3} -> {len(large[who, url].sql):3}  {url}"
        )


@pytest.fixture
def study(site, other_site):
    return build_small_study(site, other_site)


def test_every_site_page_is_measured(db):
    """A page added to the URLconf must get a URL in ``site_pages`` (or a reason in
    ``NOT_PAGES``): no study needed to check that."""
    subject = SimpleNamespace(subject_identifier="101-0001")
    stub = SimpleNamespace(
        site=SimpleNamespace(code="101", pk=1),
        **dict.fromkeys(
            ("fresh", "unsigned", "eligible", "randomized", "arm_a", "arm_b", "ended"), subject
        ),
        oral_period=SimpleNamespace(pk=1),
        ae=SimpleNamespace(pk=1),
        query=SimpleNamespace(pk=1),
    )
    named = site_page_names()
    measured = set(site_pages(stub))
    assert named - measured - set(NOT_PAGES) == set(), "a site page has no URL in site_pages"
    assert measured <= named, "site_pages names a URL pattern that is gone"


def test_no_page_reads_more_for_a_bigger_study(client, study, small_pages):
    """A page's statements, and the rows they return, do not grow with the study: measured on
    the small study, again when it has grown (every list longer than a page, every panel and
    trail as long as it gets here), and again with more subjects, AEs and queries elsewhere in
    the study. A page summing the study in Python fails the rows' bound even when its number of
    statements stays the same."""
    small = _measured(client, study, warm=True)
    grow(study)
    large = _measured(client, study, warm=False)  # the same URLs: the caches are warm
    report(small, large)
    grown = growth(small, large)
    assert not grown, "\n".join(grown)
    assert {page.status for page in large.values()} <= {200, 302, 403}
    # Each site page is shown (200) to someone: the counts are of pages, not of redirects.
    site_users = {"investigator", "monitor", "data manager"}
    for name, urls in site_pages(study).items():
        for url in urls:
            users = {"statistician"} if name in STATISTICIAN_PAGES else site_users
            assert any(large[who, url].status == 200 for who in users), (name, url)
    # The data managers' main lists (and the change pages of the records above) are measured.
    for model in (Subject, AdverseEvent, DataQuery, EligibilityAssessment):
        name = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        for kind in ("changelist", "change"):
            url = admin_pages(study)[f"{name}_{kind}"][0]
            assert large["admin", url].status == 200, url

    grow_elsewhere(study)
    larger = _measured(client, study, warm=False)
    for (who, url), page in sorted(large.items()):
        print(f"{who:13} {page.status} {page.rows:5} -> {larger[who, url].rows:5} rows  {url}")
    grown = growth(large, larger) + more_rows(large, larger)
    assert not grown, "\n".join(grown)


# --- the rows a page reads ------------------------------------------------------------------------


def grow_elsewhere(study: Study, *, subjects: int = 4) -> None:
    """More subjects at both sites, each with adverse events and queries: records none of the
    measured record pages shows, and more than a page of every list (``small_pages``)."""
    for i in range(subjects):
        site, by = (
            (study.site, study.investigator)
            if i % 2
            else (study.other_site, study.other_investigator)
        )
        subject = make_randomized_subject(site, by=by, investigator=by)
        for term in ("Diarrhea", "Proteinuria"):
            _follow_up(_record_ae(subject, by, term), by, 1)
        _raise(subject, study, "sex", answer=True)
        _raise(_assessment(subject), study, "ecog")
    make_subject(study.site, by=study.investigator)


@pytest.fixture
def small_pages(monkeypatch):
    """Every list shows two rows a page (the site's lists, the bulk query page, the admin's
    changelists), so that both sizes of the study fill a page: a list then reads as many rows
    at both sizes, and a page reading the whole study reads more. Server-side cursors off: the
    cursor's row count is every row of a result."""
    from dashboard import selectors as dashboard_selectors
    from monitoring import selectors as monitoring_selectors
    from queries import views as query_views
    from subjects import views as subject_views

    monkeypatch.setattr(subject_views, "PAGE_SIZE", 2)
    monkeypatch.setattr(query_views, "PAGE_SIZE", 2)
    monkeypatch.setattr(query_views, "BULK_LIST_LIMIT", 2)
    monkeypatch.setattr(dashboard_selectors, "WAITING_LIST_LENGTH", 2)
    monkeypatch.setattr(monitoring_selectors, "LOCK_CONSOLE_PAGE_SIZE", 2)
    for model_admin in admin.site._registry.values():
        monkeypatch.setattr(model_admin, "list_per_page", 2)
    monkeypatch.setitem(connection.settings_dict, "DISABLE_SERVER_SIDE_CURSORS", True)


def _measured(client, study: Study, *, warm: bool) -> dict:
    """(user, URL) -> ``Rendered`` of every page: site pages for the site users, the
    statisticians' for a statistician, the admin's for a data manager."""
    site_users = {
        "investigator": study.investigator,
        "monitor": study.monitor,
        "data manager": study.data_manager,
    }
    pages = site_pages(study)
    for_statisticians = {name: pages.pop(name) for name in STATISTICIAN_PAGES}
    rendered = {
        **measure(client, site_users, pages, warm=warm),
        **measure(client, {"statistician": study.statistician}, for_statisticians, warm=warm),
    }
    admin_rendered = measure(
        client, {"data manager": study.data_manager}, admin_pages(study), warm=warm
    )
    rendered |= {("admin", url): page for (_, url), page in admin_rendered.items()}
    return rendered


def more_rows(before: dict, after: dict) -> list[str]:
    """The pages that read more rows after the study grew, with both counts."""
    return [
        f"{who} {url}: {before[who, url].rows} -> {page.rows} rows"
        for (who, url), page in after.items()
        if page.rows > before[who, url].rows
    ]
