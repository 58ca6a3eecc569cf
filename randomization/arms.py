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


def drug_not_of_arm(subject: str, drug: str = "drug") -> models.Q:
    """Rows whose study drug (field ``drug``) is not one of the subject's arm, or whose subject
    (path ``subject``) is not randomized: no drug may be recorded outside the allocated arm."""
    wrong = models.Q(**{f"{subject}__allocation__isnull": True})
    for arm, drugs in DRUGS_OF_ARM.items():
        of_arm = models.Q(**{f"{subject}__allocation__arm": arm})
        wrong |= of_arm & ~models.Q(**{f"{drug}__in": drugs})
    return wrong
