"""The SDTM EX domain (Exposure) of the Dataset-JSON export, from the exposure CRFs.

Restates ``exports.sdtm``'s conventions (STUDYID, USUBJID, ISO 8601 dates, no direct
identifier) because this app sits below exports and may not import it. A dose not given is a
row with EXDOSE 0 and no date, so the omission and its reason stay in the data.
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

from .models import DoseLevel, IvDose, OralDosingPeriod

# Per administration: (EXDOSE mg, EXDOSFRQ) of each sorafenib level.
ORAL_LEVELS = {
    DoseLevel.FULL: (Decimal("400"), "BID"),
    DoseLevel.REDUCED_400: (Decimal("400"), "QD"),
    DoseLevel.REDUCED_400_QOD: (Decimal("400"), "QOD"),
    DoseLevel.HELD: (Decimal("0"), None),
}


class Exposure(Dataset):
    name = "EX"
    label = "Exposure"

    @property
    def columns(self) -> tuple[Column, ...]:
        return (
            *identity_columns(),
            Column("EXSEQ", "Sequence Number", "integer", key=3),
            Column("EXTRT", "Name of Treatment", length=20),
            Column("EXDOSE", "Dose", "decimal", target="decimal"),
            Column("EXDOSU", "Dose Units", length=2),
            Column("EXDOSFRM", "Dose Form", length=10),
            Column("EXDOSFRQ", "Dosing Frequency per Interval", length=4),
            Column("EXROUTE", "Route of Administration", length=12),
            Column("EXADJ", "Reason for Dose Adjustment", length=2000),
            Column("VISITNUM", "Visit Number", "integer"),
            Column("VISIT", "Visit Name", length=12),
            Column("EXSTDTC", "Start Date/Time of Treatment", "date"),
            Column("EXENDTC", "End Date/Time of Treatment", "date"),
        )

    def _iv(self, user):
        return (
            for_user(IvDose.objects.all(), user)
            .order_by(
                "cycle__subject__site__code",
                "cycle__subject__sequence",
                "cycle__number",
                "drug",
            )
            .values_list(
                "cycle__subject__site__code",
                "cycle__subject__sequence",
                "cycle__subject__subject_identifier",
                "cycle__number",
                "drug",
                "given_dose_mg",
                "administered_date",
                "dose_change_reason",
            )
            .iterator(chunk_size=2000)
        )

    def _oral(self, user):
        return (
            for_user(OralDosingPeriod.objects.all(), user)
            .order_by("subject__site__code", "subject__sequence", "start_date", "pk")
            .values_list(
                "subject__site__code",
                "subject__sequence",
                "subject__subject_identifier",
                "drug",
                "dose_level",
                "start_date",
                "stop_date",
                "dose_change_reason",
            )
            .iterator(chunk_size=2000)
        )

    def count(self, user) -> int:
        return (
            for_user(IvDose.objects.all(), user).count()
            + for_user(OralDosingPeriod.objects.all(), user).count()
        )

    def rows(self, user) -> Iterator[list]:
        iv = (((row[0], row[1], 0), row) for row in self._iv(user))
        oral = (((row[0], row[1], 1), row) for row in self._oral(user))
        # Both are sorted by subject: merged, IV doses before periods within a subject.
        merged = heapq.merge(iv, oral, key=lambda pair: pair[0])
        for _subject, lines in groupby(merged, key=lambda pair: pair[0][:2]):
            for seq, ((_, _, kind), row) in enumerate(lines, start=1):
                line = self._iv_row(row, seq) if kind == 0 else self._oral_row(row, seq)
                yield self._ordered(line)

    def _base(self, identifier, seq, drug) -> dict:
        return {
            "STUDYID": study_id(),
            "DOMAIN": "EX",
            "USUBJID": usubjid(identifier),
            "EXSEQ": seq,
            "EXTRT": str(drug).upper(),
            "EXDOSU": "mg",
        }

    def _iv_row(self, row, seq) -> dict:
        _, _, identifier, cycle, drug, given, administered, why = row
        return {
            **self._base(identifier, seq, drug),
            "EXDOSE": decimal_text(given),
            "EXDOSFRM": "INJECTION",
            "EXDOSFRQ": "Q3W",
            "EXROUTE": "INTRAVENOUS",
            "EXADJ": why or None,
            "VISITNUM": cycle,
            "VISIT": f"CYCLE {cycle}",
            "EXSTDTC": iso_text(administered),
            "EXENDTC": iso_text(administered),
        }

    def _oral_row(self, row, seq) -> dict:
        _, _, identifier, drug, level, start, stop, why = row
        dose, frequency = ORAL_LEVELS[DoseLevel(level)]
        return {
            **self._base(identifier, seq, drug),
            "EXDOSE": decimal_text(dose),
            "EXDOSFRM": "TABLET",
            "EXDOSFRQ": frequency,
            "EXROUTE": "ORAL",
            "EXADJ": why or None,
            "EXSTDTC": iso_text(start),
            "EXENDTC": iso_text(stop),
        }


DATASETS = [Exposure()]
