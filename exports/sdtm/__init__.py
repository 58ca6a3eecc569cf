"""The SDTM-like domains of the Dataset-JSON export (DM, DS, IE, AE, SUPPAE), mapped from the
registry's records: scoped to the user, never a direct identifier.

Conventions (SDTMIG 3.x): STUDYID is ``settings.EDC_STUDY_ID``, USUBJID is STUDYID + "-" + the
subject identifier; dates ISO 8601, date-times ISO 8601 in UTC without an offset, booleans Y/N.
DM's RFSTDTC is the randomization date; ARMCD/ACTARM follow the allocation and the drugs taken
(SCRNFAIL, NOTASSGN, NOTTRT, UNPLAN). DS holds every disposition status reached, each with its
recorded date. IE holds the criteria not met. AE's AESEQ is the AE number; SUPPAE holds the
per-drug causality and action (AERELn/AEACNn), the irAE flag and the SAE clock times.
"""

from core import registry
from core.datasets import Column, Dataset, study_id, usubjid

from .adverse_events import (
    AE_ITEMS,
    AEACN,
    AEOUT,
    AEREL,
    SERIOUS_FLAGS,
    AdverseEvents,
    SuppAdverseEvents,
)
from .ie import InclusionExclusion
from .reader import SUBJECT, Reader, field_path
from .subjects import DS_EVENTS, Demographics, Disposition
from .values import dtc, encode, iso_date, scoped, yn

__all__ = [
    "AEACN",
    "AEOUT",
    "AEREL",
    "AE_ITEMS",
    "DS_EVENTS",
    "SERIOUS_FLAGS",
    "SUBJECT",
    "AdverseEvents",
    "Column",
    "Dataset",
    "Demographics",
    "Disposition",
    "InclusionExclusion",
    "Reader",
    "SuppAdverseEvents",
    "dtc",
    "encode",
    "field_path",
    "iso_date",
    "scoped",
    "sdtm_datasets",
    "study_id",
    "usubjid",
    "yn",
]


def sdtm_datasets() -> list[Dataset]:
    """These domains, then each CRF app's ``datasets`` (EX, TU, ... ADTTE) in layer order."""
    return [
        Demographics(),
        Disposition(),
        InclusionExclusion(),
        AdverseEvents(),
        SuppAdverseEvents(),
        *registry.datasets(),
    ]
