"""The SDTM VS domain (Vital Signs): one row per measurement, the systolic blood pressure."""

from collections.abc import Iterator

from core.datasets import Column, Dataset, for_user, identity_columns, iso_text, study_id, usubjid

from .models import VitalSigns


class VitalSignsDomain(Dataset):
    name = "VS"
    label = "Vital Signs"

    @property
    def columns(self) -> tuple[Column, ...]:
        return (
            *identity_columns(),
            Column("VSSEQ", "Sequence Number", "integer", key=3),
            Column("VSTESTCD", "Vital Signs Test Short Name", length=8),
            Column("VSORRES", "Result or Finding in Original Units", length=3),
            Column("VSORRESU", "Original Units", length=4),
            Column("VSPOS", "Vital Signs Position of Subject", length=8),
            Column("VSDTC", "Date/Time of Measurements", "date"),
        )

    def _records(self, user):
        return for_user(VitalSigns.objects.all(), user).select_related("subject__site")

    def count(self, user) -> int:
        return self._records(user).count()

    def rows(self, user) -> Iterator[list]:
        seq: dict[int, int] = {}
        for record in self._records(user).order_by(*VitalSigns._meta.ordering):
            seq[record.subject_id] = seq.get(record.subject_id, 0) + 1
            yield [
                study_id(),
                self.name,
                usubjid(record.subject.subject_identifier),
                seq[record.subject_id],
                "SYSBP",
                str(record.systolic_bp),
                "mmHg",
                record.position.upper(),
                iso_text(record.measured_on),
            ]


DATASETS = [VitalSignsDomain()]
