"""The SDTM oncology domains TU, TR and RS of the Dataset-JSON export (RECIST 1.1).

Restates ``exports.sdtm``'s conventions because this app sits below exports. The responses are
the ones the services stored (RSDRVFL Y) beside the investigator's (RSEVAL INVESTIGATOR), so a
reviewer sees both. VISITNUM is 0 at baseline, then the assessment number.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from decimal import Decimal
from itertools import groupby

from core.datasets import (
    Column,
    Dataset,
    decimal_text,
    for_user,
    identity_columns,
    iso_text,
    study_id,
    usubjid,
)
from randomization import selectors as randomization_selectors

from . import recist
from .models import (
    NonTargetAssessment,
    NonTargetLesion,
    Organ,
    TargetLesion,
    TargetMeasurement,
    TumorAssessment,
)
from .recist import NonTargetStatus
from .settings import efficacy_settings

CATEGORY = "RECIST 1.1"
METHOD = {"CT": "CT SCAN", "MRI": "MRI"}
TUMSTATE = {
    NonTargetStatus.ABSENT: "ABSENT",
    NonTargetStatus.PRESENT: "PRESENT",
    NonTargetStatus.PROGRESSION: "UNEQUIVOCAL PROGRESSION",
}
BATCH = 2000


def _location(organ: str) -> str:
    return Organ(organ).label.upper() if organ in Organ.values else organ.upper()


def _visit(number: int) -> tuple[int, str]:
    return (number, f"ASSESSMENT {number}") if number else (0, "BASELINE")


def _merged(*streams, stream_first: bool = False) -> Iterator[tuple[str, list]]:
    """Streams of rows (site code, sequence, identifier, order tuple, ...) each sorted by
    subject then order, merged: (identifier, the subject's rows in (order, stream) order, or
    in (stream, order) order when ``stream_first``)."""

    def tagged(stream, i):
        for row in stream:
            key = (row[0], row[1], i, *row[3]) if stream_first else (row[0], row[1], *row[3], i)
            yield key, row

    keyed = [tagged(stream, i) for i, stream in enumerate(streams)]
    merged = heapq.merge(*keyed, key=lambda pair: pair[0])
    for _, lines in groupby(merged, key=lambda pair: pair[0][:2]):
        rows = [row for _, row in lines]
        yield rows[0][2], rows


SUBJECT = ("subject__site__code", "subject__sequence", "subject__subject_identifier")
CHILD_SUBJECT = (
    "assessment__subject__site__code",
    "assessment__subject__sequence",
    "assessment__subject__subject_identifier",
)


class TumorIdentification(Dataset):
    name = "TU"
    label = "Tumor/Lesion Identification"

    @property
    def columns(self) -> tuple[Column, ...]:
        return (
            *identity_columns(),
            Column("TUSEQ", "Sequence Number", "integer", key=3),
            Column("TULNKID", "Link ID", length=5),
            Column("TUTESTCD", "Tumor/Lesion ID Short Name", length=8),
            Column("TUTEST", "Tumor/Lesion ID Test Name", length=40),
            Column("TUORRES", "Tumor/Lesion ID Result", length=10),
            Column("TUSTRESC", "Tumor/Lesion ID Result Std. Format", length=10),
            Column("TULOC", "Location of the Tumor/Lesion", length=40),
            Column("TUMETHOD", "Method of Identification", length=8),
            Column("TUEVAL", "Evaluator", length=12),
            Column("VISITNUM", "Visit Number", "integer"),
            Column("VISIT", "Visit Name", length=14),
            Column("TUDTC", "Date/Time of Tumor/Lesion Identification", "date"),
        )

    def _lesions(self, model, user, kind):
        fields = ("number", "organ", "method", "baseline_date")
        for row in (
            for_user(model.objects.all(), user)
            .order_by(*SUBJECT[:2], "number")
            .values_list(*SUBJECT, *fields)
            .iterator(chunk_size=BATCH)
        ):
            yield (*row[:3], (row[3],), kind, *row[3:])

    def _new(self, user):
        for row in (
            for_user(TumorAssessment.objects.filter(new_lesions=True), user)
            .order_by(*SUBJECT[:2], "number")
            .values_list(*SUBJECT, "number", "method", "assessment_date")
            .iterator(chunk_size=BATCH)
        ):
            yield (*row[:3], (row[3],), "NEW", row[3], None, row[4], row[5])

    def count(self, user) -> int:
        return (
            for_user(TargetLesion.objects.all(), user).count()
            + for_user(NonTargetLesion.objects.all(), user).count()
            + for_user(TumorAssessment.objects.filter(new_lesions=True), user).count()
        )

    def rows(self, user) -> Iterator[list]:
        streams = (
            self._lesions(TargetLesion, user, "TARGET"),
            self._lesions(NonTargetLesion, user, "NON-TARGET"),
            self._new(user),
        )
        for identifier, lines in _merged(*streams, stream_first=True):
            for seq, row in enumerate(lines, start=1):
                _, _, _, _, kind, number, organ, method, day = row
                prefix = {"TARGET": "T", "NON-TARGET": "NT", "NEW": "NEW"}[kind]
                visitnum, visit = _visit(number if kind == "NEW" else 0)
                yield self._ordered(
                    {
                        "STUDYID": study_id(),
                        "DOMAIN": "TU",
                        "USUBJID": usubjid(identifier),
                        "TUSEQ": seq,
                        "TULNKID": f"{prefix}{number:02d}",
                        "TUTESTCD": "TUMIDENT",
                        "TUTEST": "Tumor Identification",
                        "TUORRES": kind,
                        "TUSTRESC": kind,
                        "TULOC": _location(organ) if organ else None,
                        "TUMETHOD": METHOD.get(method),
                        "TUEVAL": "INVESTIGATOR",
                        "VISITNUM": visitnum,
                        "VISIT": visit,
                        "TUDTC": iso_text(day),
                    }
                )


class TumorResults(Dataset):
    name = "TR"
    label = "Tumor/Lesion Results"

    @property
    def columns(self) -> tuple[Column, ...]:
        return (
            *identity_columns(),
            Column("TRSEQ", "Sequence Number", "integer", key=3),
            Column("TRLNKID", "Link ID", length=5),
            Column("TRTESTCD", "Tumor/Lesion Assessment Short Name", length=8),
            Column("TRTEST", "Tumor/Lesion Assessment Test Name", length=50),
            Column("TRORRES", "Result or Finding in Original Units", length=25),
            Column("TRORRESU", "Original Units", length=2),
            Column("TRSTRESC", "Character Result/Finding in Std Format", length=25),
            Column(
                "TRSTRESN", "Numeric Result/Finding in Standard Units", "decimal", target="decimal"
            ),
            Column("TRSTRESU", "Standard Units", length=2),
            Column("TRSTAT", "Completion Status", length=8),
            Column("TRMETHOD", "Method Used to Identify the Tumor", length=8),
            Column("TREVAL", "Evaluator", length=12),
            Column("VISITNUM", "Visit Number", "integer"),
            Column("VISIT", "Visit Name", length=14),
            Column("TRDTC", "Date/Time of Tumor Measurement", "date"),
        )

    def _baseline(self, user):
        for row in (
            for_user(TargetLesion.objects.all(), user)
            .order_by(*SUBJECT[:2], "number")
            .values_list(*SUBJECT, "number", "organ", "diameter", "method", "baseline_date")
            .iterator(chunk_size=BATCH)
        ):
            yield (*row[:3], (0, 0, row[3]), "BASE", *row[3:])

    def _measurements(self, user):
        for row in (
            for_user(TargetMeasurement.objects.all(), user)
            .order_by(*CHILD_SUBJECT[:2], "assessment__number", "lesion__number")
            .values_list(
                *CHILD_SUBJECT,
                "assessment__number",
                "lesion__number",
                "lesion__organ",
                "diameter",
                "assessment__method",
                "assessment__assessment_date",
            )
            .iterator(chunk_size=BATCH)
        ):
            yield (*row[:3], (row[3], 0, row[4]), "TARGET", *row[3:])

    def _states(self, user):
        for row in (
            for_user(NonTargetAssessment.objects.all(), user)
            .order_by(*CHILD_SUBJECT[:2], "assessment__number", "lesion__number")
            .values_list(
                *CHILD_SUBJECT,
                "assessment__number",
                "lesion__number",
                "status",
                "assessment__method",
                "assessment__assessment_date",
            )
            .iterator(chunk_size=BATCH)
        ):
            yield (*row[:3], (row[3], 1, row[4]), "STATE", *row[3:])

    def _sums(self, user):
        for row in (
            for_user(TumorAssessment.objects.all(), user)
            .order_by(*SUBJECT[:2], "number")
            .values_list(
                *SUBJECT,
                "number",
                "target_sum",
                "change_from_baseline",
                "change_from_nadir",
                "method",
                "assessment_date",
                "target_response",
            )
            .iterator(chunk_size=BATCH)
        ):
            yield (*row[:3], (row[3], 2, 0), "SUM", *row[3:])

    def rows(self, user) -> Iterator[list]:
        streams = (
            self._baseline(user),
            self._measurements(user),
            self._states(user),
            self._sums(user),
        )
        for identifier, lines in _merged(*streams):
            out = []
            baseline = [row[5:] for row in lines if row[4] == "BASE"]
            for number, organ, diameter, method, day in baseline:
                out.append(self._lesion(number, organ, diameter, method, day, 0))
            if baseline:
                total = sum((row[2] for row in baseline), Decimal(0))
                out.append(self._sum(total, baseline[-1][3], baseline[-1][4], 0))
            for row in lines:
                kind = row[4]
                if kind == "TARGET":
                    visit, number, organ, diameter, method, day = row[5:]
                    out.append(self._lesion(number, organ, diameter, method, day, visit))
                elif kind == "STATE":
                    visit, number, status, method, day = row[5:]
                    out.append(self._state(number, status, method, day, visit))
                elif kind == "SUM":
                    visit, total, from_baseline, from_nadir, method, day, target = row[5:]
                    if not target:
                        continue  # no target lesion: no sum of diameters
                    out.append(self._sum(total, method, day, visit))
                    for code, name, value in (
                        ("PCBSD", "Percent Change From Baseline in Sum of Diam", from_baseline),
                        ("PCNSD", "Percent Change From Nadir in Sum of Diam", from_nadir),
                    ):
                        if value is not None:
                            out.append(
                                self._value(None, code, name, value, "%", method, day, visit)
                            )
            for seq, line in enumerate(out, start=1):
                yield self._ordered(
                    {
                        "STUDYID": study_id(),
                        "DOMAIN": "TR",
                        "USUBJID": usubjid(identifier),
                        "TRSEQ": seq,
                        "TREVAL": "INVESTIGATOR",
                        **line,
                    }
                )

    @staticmethod
    def _value(link, code, name, value, unit, method, day, visit) -> dict:
        visitnum, visit_name = _visit(visit)
        text = decimal_text(value)
        return {
            "TRLNKID": link,
            "TRTESTCD": code,
            "TRTEST": name,
            "TRORRES": text,
            "TRORRESU": unit if text is not None else None,
            "TRSTRESC": text,
            "TRSTRESN": text,
            "TRSTRESU": unit if text is not None else None,
            "TRSTAT": None if text is not None else "NOT DONE",
            "TRMETHOD": METHOD.get(method),
            "VISITNUM": visitnum,
            "VISIT": visit_name,
            "TRDTC": iso_text(day),
        }

    def _lesion(self, number, organ, diameter, method, day, visit) -> dict:
        if organ == Organ.LYMPH_NODE:
            code, name = "SAXIS", "Short Axis"
        else:
            code, name = "LDIAM", "Longest Diameter"
        return self._value(f"T{number:02d}", code, name, diameter, "mm", method, day, visit)

    def _sum(self, total, method, day, visit) -> dict:
        return self._value(None, "SUMDIAM", "Sum of Diameter", total, "mm", method, day, visit)

    def _state(self, number, status, method, day, visit) -> dict:
        visitnum, visit_name = _visit(visit)
        state = TUMSTATE.get(NonTargetStatus(status))
        return {
            "TRLNKID": f"NT{number:02d}",
            "TRTESTCD": "TUMSTATE",
            "TRTEST": "Tumor State",
            "TRORRES": state,
            "TRSTRESC": state,
            "TRSTAT": None if state else "NOT DONE",
            "TRMETHOD": METHOD.get(method),
            "VISITNUM": visitnum,
            "VISIT": visit_name,
            "TRDTC": iso_text(day),
        }


RS_TESTS = (
    ("target_response", "TRGRESP", "Target Response", True),
    ("non_target_response", "NTRGRESP", "Non-target Response", True),
    ("derived_response", "OVRLRESP", "Overall Response", True),
    ("investigator_response", "OVRLRESP", "Overall Response", False),
)


class DiseaseResponse(Dataset):
    name = "RS"
    label = "Disease Response and Clin Classification"

    @property
    def columns(self) -> tuple[Column, ...]:
        return (
            *identity_columns(),
            Column("RSSEQ", "Sequence Number", "integer", key=3),
            Column("RSTESTCD", "Assessment Short Name", length=8),
            Column("RSTEST", "Assessment Name", length=40),
            Column("RSCAT", "Category for Assessment", length=10),
            Column("RSORRES", "Result or Finding in Original Units", length=14),
            Column("RSSTRESC", "Character Result/Finding in Std Format", length=14),
            Column("RSEVAL", "Evaluator", length=12),
            Column("RSDRVFL", "Derived Flag", length=1),
            Column("VISITNUM", "Visit Number", "integer"),
            Column("VISIT", "Visit Name", length=14),
            Column("RSDTC", "Date/Time of Assessment", "date"),
        )

    def _assessments(self, user):
        return (
            for_user(TumorAssessment.objects.all(), user)
            .order_by(*SUBJECT[:2], "assessment_date", "number")
            .values_list(
                "subject_id",
                "subject__subject_identifier",
                "number",
                "assessment_date",
                *(field for field, *_ in RS_TESTS),
            )
            .iterator(chunk_size=BATCH)
        )

    def rows(self, user) -> Iterator[list]:
        randomized = randomization_selectors.randomization_dates(
            for_user(TumorAssessment.objects.all(), user).values_list("subject_id", flat=True)
        )
        config = efficacy_settings()
        for (subject_id, identifier), lines in groupby(
            self._assessments(user), key=lambda row: row[:2]
        ):
            lines = list(lines)
            seq = 0
            for _, _, number, day, *responses in lines:
                visitnum, visit = _visit(number)
                for (_, code, name, derived), value in zip(RS_TESTS, responses, strict=True):
                    if not value:
                        continue
                    seq += 1
                    yield self._row(
                        identifier, seq, code, name, value, derived, visitnum, visit, day
                    )
            best = recist.best_overall_response(
                [(row[3], row[6]) for row in lines],
                randomized_on=randomized.get(subject_id),
                confirmation_days=config["confirmation_days"],
                sd_min_days=config["sd_min_days"],
            )
            if lines:
                seq += 1
                yield self._row(
                    identifier,
                    seq,
                    "BESTRESP",
                    "Best Overall Response",
                    best.response.value,
                    True,
                    None,
                    None,
                    best.day,
                )

    def _row(self, identifier, seq, code, name, value, derived, visitnum, visit, day) -> list:
        return self._ordered(
            {
                "STUDYID": study_id(),
                "DOMAIN": "RS",
                "USUBJID": usubjid(identifier),
                "RSSEQ": seq,
                "RSTESTCD": code,
                "RSTEST": name,
                "RSCAT": CATEGORY,
                "RSORRES": value,
                "RSSTRESC": value,
                "RSEVAL": None if derived else "INVESTIGATOR",
                "RSDRVFL": "Y" if derived else None,
                "VISITNUM": visitnum,
                "VISIT": visit,
                "RSDTC": iso_text(day),
            }
        )


DATASETS = [TumorIdentification(), TumorResults(), DiseaseResponse()]
