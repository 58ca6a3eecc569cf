"""The ADaM-like time-to-event dataset ADTTE (PFS and OS) of the Dataset-JSON export.

Restates ``exports.sdtm``'s conventions because this app sits below exports. Values come from
``survival.endpoints`` at the data cut-off (CNSR 0 event, 1 censored). Efficacy by arm is for the
statistician and the sponsor only: other readers get the columns with no row.
"""

from __future__ import annotations

from collections.abc import Iterator

from core import access
from core.datasets import Column, Dataset, identity_columns, study_id, usubjid
from core.roles import Role
from randomization.arms import Arm

from . import endpoints, selectors


def may_read_time_to_event(user) -> bool:
    """The statistician (``access.can_see_efficacy_by_arm``) and the sponsor; ``None`` is the
    operator at the server's shell."""
    return (
        user is None or access.can_see_efficacy_by_arm(user) or access.has_role(user, Role.SPONSOR)
    )


class TimeToEvent(Dataset):
    name = "ADTTE"
    label = "Time-to-Event Analysis Dataset"

    @property
    def columns(self) -> tuple[Column, ...]:
        return (
            *identity_columns(domain_length=None),
            Column("TRT01P", "Planned Treatment for Period 01", length=40),
            Column("PARAMCD", "Parameter Code", length=8, key=3),
            Column("PARAM", "Parameter", length=40),
            Column("AVAL", "Analysis Value", "integer"),
            Column("STARTDT", "Time-to-Event Origin Date for Subject", "date"),
            Column("ADT", "Analysis Date", "date"),
            Column("CNSR", "Censor", "integer"),
            Column("EVNTDESC", "Event or Censoring Description", length=100),
            Column("CNSDTDSC", "Censor Date Description", length=100),
        )

    def rows(self, user) -> Iterator[list]:
        if not may_read_time_to_event(user):
            return
        rows = selectors.time_to_event(user)
        order = {endpoints.PFS: 0, endpoints.OS: 1}
        for row in sorted(rows, key=lambda r: (r.subject, order[r.parameter])):
            yield self._ordered(
                {
                    "STUDYID": study_id(),
                    "USUBJID": usubjid(row.subject),
                    "TRT01P": Arm(row.arm).label.upper() if row.arm else None,
                    "PARAMCD": row.parameter,
                    "PARAM": endpoints.PARAMETERS[row.parameter],
                    "AVAL": row.days,
                    "STARTDT": row.start.isoformat(),
                    "ADT": row.end.isoformat(),
                    "CNSR": row.censored,
                    "EVNTDESC": row.description if row.event else None,
                    "CNSDTDSC": None if row.event else row.description,
                }
            )


DATASETS = [TimeToEvent()]
