"""DM and DS: one row per subject seen, and the disposition events each subject reached."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from core.datasets import Column, Dataset, identity_columns, study_id, usubjid
from randomization import selectors as randomization_selectors
from randomization.arms import DRUGS_OF_ARM, Arm
from subjects.models import SubjectStatus
from treatment import selectors as treatment_selectors

from .. import records
from .values import _batches, country_code, iso_date, scoped

# --- the subject's path: the dates each status was reached ------------------------------------

RANDOMIZED = SubjectStatus.RANDOMIZED.value
HISTORY_BATCH = 500  # subjects per history query


def statuses_reached(form, subject_ids, statuses) -> dict[int, dict[str, date | None]]:
    """subject id -> {status: the status date last recorded with it}, from the subjects'
    history: a later status does not hide an earlier one."""
    reached: dict[int, dict[str, date | None]] = {}
    rows = (
        form.model_class()
        .history.filter(id__in=subject_ids, status__in=statuses)
        .order_by("history_date", "history_id")
        .values_list("id", "status", "status_date")
    )
    for subject_id, status, status_date in rows:
        reached.setdefault(subject_id, {})[status] = status_date
    return reached


def randomization_date(subject) -> date | None:
    """The randomization date (``randomization.selectors``: the site's date of the
    allocation); None without an allocation. No query with the allocation and the site
    selected with the subject."""
    allocation = getattr(subject, "allocation", None)
    if allocation is None:
        return None
    return randomization_selectors.randomization_date_of(allocation)


def _subject_queryset(user):
    form = records.form_named("subjects")
    return form, scoped(form, user).select_related("allocation", "site")


def _subjects_with_history(user, statuses):
    """(subject, {status: date}) of the subjects ``user`` sees, in batches of history."""
    form, queryset = _subject_queryset(user)
    for batch in _batches(records.stream(queryset), HISTORY_BATCH):
        reached = statuses_reached(form, [s.pk for s in batch], statuses)
        for subject in batch:
            yield form, subject, reached.get(subject.pk, {})


# --- DM ------------------------------------------------------------------------------------------

SCREEN_FAILURE_ARM = ("SCRNFAIL", "Screen Failure")
NOT_ASSIGNED_ARM = ("NOTASSGN", "Not Assigned")
NOT_TREATED_ARM = ("NOTTRT", "Not Treated")
UNPLANNED_ARM = ("UNPLAN", "Unplanned Treatment")


def arm_of(status: str, allocation) -> tuple[str, str]:
    if allocation is not None:
        return allocation.arm, Arm(allocation.arm).label
    if status == SubjectStatus.SCREEN_FAILED:
        return SCREEN_FAILURE_ARM
    return NOT_ASSIGNED_ARM


def actual_arm_of(planned: tuple[str, str], allocation, exposed) -> tuple[str, str]:
    """ACTARMCD/ACTARM: ``planned`` (ARMCD/ARM) for a subject not randomized; else from the
    study drugs taken (``exposed``: a ``treatment.selectors.ExposureSpan`` or None)."""
    if allocation is None:
        return planned
    if exposed is None:
        return NOT_TREATED_ARM
    if exposed.drugs <= set(DRUGS_OF_ARM[allocation.arm]):
        return planned
    return UNPLANNED_ARM


class Demographics(Dataset):
    name = "DM"
    label = "Demographics"
    columns = (
        *identity_columns(),
        Column("SUBJID", "Subject Identifier for the Study", length=20),
        Column("RFSTDTC", "Subject Reference Start Date/Time", "date"),
        Column("RFXSTDTC", "Date/Time of First Study Treatment", "date"),
        Column("RFXENDTC", "Date/Time of Last Study Treatment", "date"),
        Column("RFICDTC", "Date/Time of Informed Consent", "date"),
        Column("DTHDTC", "Date/Time of Death", "date"),
        Column("DTHFL", "Subject Death Flag", length=1),
        Column("SITEID", "Study Site Identifier", length=10),
        Column("AGE", "Age", "integer"),
        Column("AGEU", "Age Units", length=5),
        Column("SEX", "Sex", length=1),
        Column("ARMCD", "Planned Arm Code", length=8),
        Column("ARM", "Description of Planned Arm", length=40),
        Column("ACTARMCD", "Actual Arm Code", length=8),
        Column("ACTARM", "Description of Actual Arm", length=40),
        Column("COUNTRY", "Country", length=3),
    )

    def count(self, user) -> int:
        return _subject_queryset(user)[1].count()

    def rows(self, user) -> Iterator[list]:
        """Batch by batch of subjects: their records, then their exposure (one query each)."""
        countries: dict[str, str] = {}
        form, queryset = _subject_queryset(user)
        for batch in _batches(records.stream(queryset), HISTORY_BATCH):
            spans = treatment_selectors.exposure_spans([s.pk for s in batch])
            for subject in batch:
                values = records.row(form, subject, identifiers=False)
                country = subject.site.country
                if country not in countries:
                    countries[country] = country_code(country)
                allocation = getattr(subject, "allocation", None)
                planned = arm_of(values["status"], allocation)
                exposed = spans.get(subject.pk)
                yield self._ordered(
                    self.row(
                        values,
                        planned,
                        randomization_date(subject),
                        countries[country],
                        actual=actual_arm_of(planned, allocation, exposed),
                        exposed=exposed,
                    )
                )

    @staticmethod
    def row(
        values: dict,
        armcd_arm: tuple[str, str],
        randomized,
        country: str,
        *,
        actual: tuple[str, str],
        exposed=None,
    ) -> dict:
        armcd, arm = armcd_arm
        died = values["status"] == SubjectStatus.DIED
        return {
            "STUDYID": study_id(),
            "DOMAIN": "DM",
            "USUBJID": usubjid(values["subject_identifier"]),
            "SUBJID": values["subject_identifier"],
            "RFSTDTC": iso_date(randomized),
            "RFXSTDTC": iso_date(exposed.first) if exposed else None,
            "RFXENDTC": iso_date(exposed.last) if exposed else None,
            "RFICDTC": iso_date(values["consent_date"]),
            "DTHDTC": iso_date(values["status_date"]) if died else None,
            "DTHFL": "Y" if died else None,
            "SITEID": values["site"],
            "AGE": values["age"],
            "AGEU": "YEARS" if values["age"] is not None else None,
            "SEX": values["sex"],
            "ARMCD": armcd,
            "ARM": arm,
            "ACTARMCD": actual[0],
            "ACTARM": actual[1],
            "COUNTRY": country,
        }


# --- DS ------------------------------------------------------------------------------------------

CONSENT = "consent"
# event -> (DSTERM, DSDECOD, DSCAT, DSSCAT), in the order of the trial path.
DS_EVENTS: dict[str, tuple[str, str, str, str | None]] = {
    CONSENT: (
        "INFORMED CONSENT OBTAINED",
        "INFORMED CONSENT OBTAINED",
        "PROTOCOL MILESTONE",
        None,
    ),
    SubjectStatus.SCREEN_FAILED: (
        "SCREEN FAILURE",
        "SCREEN FAILURE",
        "DISPOSITION EVENT",
        "STUDY PARTICIPATION",
    ),
    RANDOMIZED: ("RANDOMIZED", "RANDOMIZED", "PROTOCOL MILESTONE", None),
    # No reason is collected for the end of treatment: no NCOMPLT term fits better than OTHER.
    SubjectStatus.TREATMENT_ENDED: (
        "END OF TREATMENT",
        "OTHER",
        "DISPOSITION EVENT",
        "STUDY TREATMENT",
    ),
    SubjectStatus.WITHDRAWN: (
        "WITHDRAWN",
        "WITHDRAWAL BY SUBJECT",
        "DISPOSITION EVENT",
        "STUDY PARTICIPATION",
    ),
    SubjectStatus.DIED: ("DEATH", "DEATH", "DISPOSITION EVENT", "STUDY PARTICIPATION"),
    SubjectStatus.COMPLETED: (
        "COMPLETED",
        "COMPLETED",
        "DISPOSITION EVENT",
        "STUDY PARTICIPATION",
    ),
}
DISPOSITION_STATUSES = tuple(e for e in DS_EVENTS if e not in (CONSENT, RANDOMIZED))


class Disposition(Dataset):
    name = "DS"
    label = "Disposition"
    columns = (
        *identity_columns(),
        Column("DSSEQ", "Sequence Number", "integer", key=3),
        Column("DSTERM", "Reported Term for the Disposition Event", length=40),
        Column("DSDECOD", "Standardized Disposition Term", length=40),
        Column("DSCAT", "Category for Disposition Event", length=20),
        Column("DSSCAT", "Subcategory for Disposition Event", length=20),
        Column("DSSTDTC", "Start Date/Time of Disposition Event", "date"),
    )

    def rows(self, user) -> Iterator[list]:
        for _, subject, reached in _subjects_with_history(user, DISPOSITION_STATUSES):
            yield from (self._ordered(row) for row in self.events(subject, reached))

    def events(self, subject, reached: dict) -> list[dict]:
        dates = {s: d for s, d in reached.items() if s in DISPOSITION_STATUSES}
        if subject.status in DISPOSITION_STATUSES:  # the record itself has the last word
            dates[subject.status] = subject.status_date
        if subject.consent_date:
            dates[CONSENT] = subject.consent_date
        if getattr(subject, "allocation", None) is not None:
            dates[RANDOMIZED] = randomization_date(subject)
        order = list(DS_EVENTS)
        found = sorted(dates, key=lambda e: (dates[e] or date.max, order.index(e)))
        rows = []
        for seq, event in enumerate(found, start=1):
            term, decod, cat, scat = DS_EVENTS[event]
            rows.append(
                {
                    "STUDYID": study_id(),
                    "DOMAIN": "DS",
                    "USUBJID": usubjid(subject.subject_identifier),
                    "DSSEQ": seq,
                    "DSTERM": term,
                    "DSDECOD": decod,
                    "DSCAT": cat,
                    "DSSCAT": scat,
                    "DSSTDTC": iso_date(dates[event]),
                }
            )
        return rows
