"""IE: one row per criterion not met at the eligibility evaluation."""

from __future__ import annotations

from collections.abc import Iterator

from core.datasets import Column, Dataset, identity_columns, study_id, usubjid
from eligibility.criteria import CRITERIA

from .. import records
from .values import _group, iso_date, scoped

# --- IE ------------------------------------------------------------------------------------------

CRITERION_TEXT = {c.code: c.text for c in CRITERIA}


class InclusionExclusion(Dataset):
    name = "IE"
    label = "Inclusion/Exclusion Criteria Not Met"
    columns = (
        *identity_columns(),
        Column("IESEQ", "Sequence Number", "integer"),
        Column("IETESTCD", "Inclusion/Exclusion Criterion Short Name", length=8, key=3),
        Column("IETEST", "Inclusion/Exclusion Criterion", length=200),
        Column("IECAT", "Inclusion/Exclusion Category", length=9),
        Column("IEORRES", "I/E Criterion Original Result", length=1),
        Column("IESTRESC", "I/E Criterion Result in Std Format", length=1),
        Column("IEDTC", "Date/Time of Collection", "date"),
    )

    def rows(self, user) -> Iterator[list]:
        form = records.form_named("eligibility")
        criteria = _group(form, "criteria")
        for assessment in records.stream(scoped(form, user)):
            values = records.row(form, assessment, identifiers=False)
            failed = [c for c in records.child_rows(criteria, assessment) if c["outcome"] == "fail"]
            collected = iso_date(values["signed_at"] or values["updated"])
            for seq, criterion in enumerate(failed, start=1):
                yield self._ordered(self.row(values["subject"], seq, criterion, collected))

    @staticmethod
    def row(subject_identifier: str, seq: int, criterion: dict, collected: str | None) -> dict:
        inclusion = criterion["kind"] == "inclusion"
        # SDTM: an inclusion criterion not met is N; an exclusion criterion met is Y.
        result = "N" if inclusion else "Y"
        return {
            "STUDYID": study_id(),
            "DOMAIN": "IE",
            "USUBJID": usubjid(subject_identifier),
            "IESEQ": seq,
            "IETESTCD": criterion["code"],
            "IETEST": CRITERION_TEXT.get(criterion["code"], "")[:200],
            "IECAT": "INCLUSION" if inclusion else "EXCLUSION",
            "IEORRES": result,
            "IESTRESC": result,
            "IEDTC": collected,
        }
