"""The rows of the datasets the database builds, written again in Python: the tests' oracle
(``encode(row)`` of each must be the very line the database gives)."""

from __future__ import annotations

from collections.abc import Iterator

from core.datasets import study_id, usubjid
from exports import records
from exports.sdtm import AEACN, AEOUT, AEREL, SERIOUS_FLAGS, SUBJECT, Reader, dtc, iso_date, yn
from exports.sdtm.adverse_events import AE_ITEMS, MULTIPLE, drug_number
from exports.sdtm.values import scoped
from randomization.arms import drug_name


def _events(user) -> Iterator[tuple[dict, list[dict]]]:
    form = records.form_named("adverse-events")
    for values, children in Reader(form, AE_ITEMS, children=["causality"])(scoped(form, user)):
        yield values, children["causality"]


def _worst(causality: list[dict]) -> str | None:
    order = list(AEREL)
    return AEREL[max((c["causality"] for c in causality), key=order.index)] if causality else None


def _action(causality: list[dict]) -> str | None:
    actions = {c["action_taken"] for c in causality}
    if not actions:
        return None
    return AEACN[actions.pop()] if len(actions) == 1 else MULTIPLE


def ae_rows(user) -> Iterator[list]:
    for values, causality in _events(user):
        row = {
            "STUDYID": study_id(),
            "DOMAIN": "AE",
            "USUBJID": usubjid(values[SUBJECT]),
            "AESEQ": values["ae_number"],
            "AESPID": str(values["ae_number"]),
            "AETERM": values["verbatim_term"] or values["term"],
            "AEDECOD": values["term"],
            "AEBODSYS": values["soc"],
            "AESER": yn(values["serious"]),
            "AEACN": _action(causality),
            "AEREL": _worst(causality),
            "AEOUT": AEOUT[values["outcome"]],
            "AECONTRT": yn(values["treatment_given"]),
            "AETOXGR": str(values["grade"]),
            "AESTDTC": iso_date(values["onset_date"]),
            "AEENDTC": iso_date(values["end_date"]),
        }
        row |= {flag: yn(values[item]) for flag, (item, _) in SERIOUS_FLAGS.items()}
        yield row


def suppae_rows(user) -> Iterator[dict]:
    for values, causality in _events(user):
        found = []
        for c in causality:
            n, name = drug_number(c["drug"]), drug_name(c["drug"])
            found.append(
                (f"AEREL{n}", f"Causality to {name}", AEREL[c["causality"]], "INVESTIGATOR")
            )
            found.append((f"AEACN{n}", f"Action Taken with {name}", AEACN[c["action_taken"]], None))
        found.append(("AEIRAE", "Immune-Related Adverse Event", yn(values["immune_related"]), None))
        for item, qnam, qlabel in (
            ("site_aware_at", "SAEAWDTC", "Date/Time Site Aware of SAE"),
            ("sae_reported_at", "SAERPDTC", "Date/Time SAE Reported to Sponsor"),
        ):
            if values[item]:
                found.append((qnam, qlabel, dtc(values[item]), None))
        base = {
            "STUDYID": study_id(),
            "RDOMAIN": "AE",
            "USUBJID": usubjid(values[SUBJECT]),
            "IDVAR": "AESEQ",
            "IDVARVAL": str(values["ae_number"]),
            "QORIG": "CRF",
        }
        for qnam, qlabel, qval, qeval in found:
            yield {**base, "QNAM": qnam, "QLABEL": qlabel, "QVAL": qval, "QEVAL": qeval}


ORACLES = {"AE": ae_rows, "SUPPAE": suppae_rows}


def rows(dataset, user) -> Iterator[list]:
    """``dataset``'s rows written in Python, in column order."""
    oracle = ORACLES.get(dataset.name)
    if oracle is None:
        yield from dataset.rows(user)
        return
    for row in oracle(user):
        yield [row.get(column.name) for column in dataset.columns]
