"""The two arms of the trial and the study drugs of each (used by randomization and the AE CRF)."""

from django.db import models


class Arm(models.TextChoices):
    A = "A", "Toripalimab + bevacizumab"
    B = "B", "Sorafenib"


class StudyDrug(models.TextChoices):
    TORIPALIMAB = "toripalimab", "Toripalimab 240 mg IV q3w"
    BEVACIZUMAB = "bevacizumab", "Bevacizumab 15 mg/kg IV q3w"
    SORAFENIB = "sorafenib", "Sorafenib 400 mg PO bid"


def drug_name(drug: str) -> str:
    """How pages, messages and exports name a study drug: "Toripalimab" (its label adds the
    dose)."""
    return StudyDrug(drug).name.title()


DRUGS_OF_ARM: dict[str, tuple[str, ...]] = {
    Arm.A: (StudyDrug.TORIPALIMAB, StudyDrug.BEVACIZUMAB),
    Arm.B: (StudyDrug.SORAFENIB,),
}
