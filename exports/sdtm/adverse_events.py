"""AE and SUPPAE: one row per adverse event, and what SDTM AE has no variable for."""

from __future__ import annotations

from collections.abc import Iterator

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Count

from adverse_events.models import ActionTaken, AeOutcome, Causality
from core.datasets import Column, Dataset, identity_columns, study_id
from core.sql import literal
from randomization.arms import StudyDrug, drug_name

from .. import records
from .reader import Reader, field_path, subject_source
from .sqljson import (
    SQL_NULL,
    aliased_sql,
    dialect,
    fetched_lines,
    order_clause,
    ordering_of,
    sql_case,
    sql_date,
    sql_dtc,
    sql_integer,
    sql_json,
    sql_row,
    sql_str,
    sql_text,
    sql_usubjid,
    sql_yn,
)
from .values import _group, scoped

# --- AE and SUPPAE -------------------------------------------------------------------------------

AEOUT = {
    AeOutcome.RECOVERED: "RECOVERED/RESOLVED",
    AeOutcome.RECOVERING: "RECOVERING/RESOLVING",
    AeOutcome.NOT_RECOVERED: "NOT RECOVERED/NOT RESOLVED",
    AeOutcome.RECOVERED_WITH_SEQUELAE: "RECOVERED/RESOLVED WITH SEQUELAE",
    AeOutcome.FATAL: "FATAL",
    AeOutcome.UNKNOWN: "UNKNOWN",
}
# Weakest first: the worst causality over the drugs is the one latest in this order.
AEREL = {
    Causality.NOT_RELATED: "NOT RELATED",
    Causality.UNLIKELY: "UNLIKELY RELATED",
    Causality.POSSIBLE: "POSSIBLY RELATED",
    Causality.PROBABLE: "PROBABLY RELATED",
    Causality.DEFINITE: "DEFINITELY RELATED",
}
AEACN = {
    ActionTaken.DOSE_NOT_CHANGED: "DOSE NOT CHANGED",
    ActionTaken.DOSE_REDUCED: "DOSE REDUCED",
    ActionTaken.DRUG_INTERRUPTED: "DRUG INTERRUPTED",
    ActionTaken.DRUG_WITHDRAWN: "DRUG WITHDRAWN",
    ActionTaken.NOT_APPLICABLE: "NOT APPLICABLE",
}
MULTIPLE = "MULTIPLE"
# SDTM serious-criteria flag -> the AE item it comes from.
SERIOUS_FLAGS = {
    "AESCONG": ("sc_congenital_anomaly", "Congenital Anomaly or Birth Defect"),
    "AESDISAB": ("sc_disability", "Persist or Signif Disability/Incapacity"),
    "AESDTH": ("sc_death", "Results in Death"),
    "AESHOSP": ("sc_hospitalization", "Requires or Prolongs Hospitalization"),
    "AESLIFE": ("sc_life_threatening", "Is Life Threatening"),
    "AESMIE": ("sc_other_important", "Other Medically Important Serious Event"),
}
_REL_ORDER = list(AEREL)


def drug_number(drug: str) -> int:
    return list(StudyDrug).index(StudyDrug(drug)) + 1


# The AE items the two domains read (never an identifier), and the causality per drug.
AE_ITEMS = (
    "ae_number",
    "term",
    "verbatim_term",
    "soc",
    "grade",
    "onset_date",
    "end_date",
    "serious",
    *(item for item, _ in SERIOUS_FLAGS.values()),
    "site_aware_at",
    "sae_reported_at",
    "outcome",
    "immune_related",
    "treatment_given",
)


class _AdverseEventRows(Dataset):
    def _source(self, user):
        form = records.form_named("adverse-events")
        return form, _group(form, "causality"), scoped(form, user)

    # In SQL: each AE ("a": its AE_ITEMS as x_<item>, the subject as x_subject) with its
    # causality rows aggregated ("g", a LEFT JOIN on a grouped subquery), one text per AE.

    def json_lines(self, user) -> Iterator[str]:
        built = self.sql(*self._source(user))
        if built is None:
            raise ImproperlyConfigured(f"{self.name}: the AE items must be paths of model fields.")
        return fetched_lines(*built)

    def sql(self, form, group, queryset) -> tuple[str | None, list] | None:
        """The SQL of the rows as JSON text and its parameters (None: the rows cannot be read
        so; the SQL None: no row)."""
        model, child, key = form.model_class(), group.model_class(), group.parent_field
        items = {item.name: item for item in form.items}
        columns = {"x_pk": "pk", "x_subject": field_path(model, subject_source(form))}
        columns |= {f"x_{name}": field_path(model, items[name].source) for name in AE_ITEMS}
        child_paths = Reader._child_paths(group)
        ordering = ordering_of(queryset)
        own = [o for o in child._meta.ordering or () if o.lstrip("-") not in (key, f"{key}_id")]
        child_ordering = ordering_of(child._default_manager.order_by(*own))
        if None in (ordering, child_paths, child_ordering) or not all(columns.values()):
            return None
        columns |= {f"k{n}": term.lstrip("-") for n, term in enumerate(ordering)}
        child_columns = {"x_parent": f"{key}_id", "x_pk": "pk"}
        child_columns |= {
            f"x_{item.name}": path for item, path in zip(group.items, child_paths, strict=True)
        }
        child_columns |= {f"k{n}": term.lstrip("-") for n, term in enumerate(child_ordering)}
        parents = queryset.prefetch_related(None)
        children = child._default_manager.filter(**{f"{key}__in": parents.order_by().values("pk")})
        records_sql = aliased_sql(parents, columns)
        children_sql = aliased_sql(children, child_columns)
        if records_sql is None or children_sql is None:
            return None, []
        child_keys = [f"k{n}" for n in range(len(child_ordering))]
        order = order_clause("a", ordering, [f"k{n}" for n in range(len(ordering))])
        child_order = order_clause("c", child_ordering, child_keys)
        children_rows = dialect().ordered(children_sql[0], "c", child_order)
        sql = (
            f"SELECT {self.line_sql()} FROM ({records_sql[0]}) a LEFT JOIN "
            f"(SELECT c.x_parent AS parent, {self.aggregates_sql(child_order)} "
            f"FROM {children_rows} GROUP BY c.x_parent) g ON g.parent = a.x_pk "
            f"ORDER BY {order}"
        )
        return sql, records_sql[1] + children_sql[1]

    def line_sql(self) -> str:
        raise NotImplementedError

    def aggregates_sql(self, order: str) -> str:
        raise NotImplementedError


class AdverseEvents(_AdverseEventRows):
    name = "AE"
    label = "Adverse Events"
    columns = (
        *identity_columns(),
        Column("AESEQ", "Sequence Number", "integer", key=3),
        Column("AESPID", "Sponsor-Defined Identifier", length=8),
        Column("AETERM", "Reported Term for the Adverse Event", length=200),
        Column("AEDECOD", "Dictionary-Derived Term", length=200),
        Column("AEBODSYS", "Body System or Organ Class", length=200),
        Column("AESER", "Serious Event", length=1),
        Column("AEACN", "Action Taken with Study Treatment", length=16),
        Column("AEREL", "Causality", length=18),
        Column("AEOUT", "Outcome of Adverse Event", length=32),
        *(Column(flag, label, length=1) for flag, (_, label) in SERIOUS_FLAGS.items()),
        Column("AECONTRT", "Concomitant or Additional Trtmnt Given", length=1),
        Column("AETOXGR", "Standard Toxicity Grade", length=1),
        Column("AESTDTC", "Start Date/Time of Adverse Event", "date"),
        Column("AEENDTC", "End Date/Time of Adverse Event", "date"),
    )

    def count(self, user) -> int:
        return self._source(user)[2].count()

    def cells(self) -> dict[str, str]:
        """Each column's JSON text, of "a" (the AE) and "g" (its causality rows aggregated)."""
        worst = sql_case("g.rel", {n: AEREL[c] for n, c in enumerate(_REL_ORDER)})
        actions = (
            f"(CASE WHEN g.actions > 1 THEN {sql_json(MULTIPLE)} "
            f"WHEN g.actions = 1 THEN {sql_case('g.action', AEACN)} ELSE {SQL_NULL} END)"
        )
        cells = {
            "STUDYID": sql_json(study_id()),
            "DOMAIN": sql_json("AE"),
            "USUBJID": sql_usubjid("a.x_subject"),
            "AESEQ": sql_integer("a.x_ae_number"),
            "AESPID": sql_str("a.x_ae_number"),
            "AETERM": sql_text("COALESCE(NULLIF(a.x_verbatim_term, ''), a.x_term)"),
            "AEDECOD": sql_text("a.x_term"),
            "AEBODSYS": sql_text("a.x_soc"),
            "AESER": sql_yn("a.x_serious"),
            "AEACN": actions,
            "AEREL": worst,
            "AEOUT": sql_case("a.x_outcome", AEOUT),
            "AECONTRT": sql_yn("a.x_treatment_given"),
            "AETOXGR": sql_str("a.x_grade"),
            "AESTDTC": sql_date("a.x_onset_date"),
            "AEENDTC": sql_date("a.x_end_date"),
        }
        cells |= {flag: sql_yn(f"a.x_{item}") for flag, (item, _) in SERIOUS_FLAGS.items()}
        return cells

    def aggregates_sql(self, order) -> str:
        ranks = " ".join(f"WHEN {literal(c)} THEN {n}" for n, c in enumerate(_REL_ORDER))
        return (
            f"max(CASE c.x_causality {ranks} END) AS rel, "
            "count(DISTINCT c.x_action_taken) AS actions, min(c.x_action_taken) AS action"
        )

    def line_sql(self) -> str:
        cells = self.cells()
        return sql_row([cells[column.name] for column in self.columns])


class SuppAdverseEvents(_AdverseEventRows):
    """What SDTM AE has no variable for: per-drug causality and action, irAE, SAE clock."""

    name = "SUPPAE"
    label = "Supplemental Qualifiers for AE"
    columns = (
        Column("STUDYID", "Study Identifier", length=len(study_id()), key=1),
        Column("RDOMAIN", "Related Domain Abbreviation", length=2, key=2),
        Column("USUBJID", "Unique Subject Identifier", length=len(study_id()) + 21, key=3),
        Column("IDVAR", "Identifying Variable", length=8, key=4),
        Column("IDVARVAL", "Identifying Variable Value", length=8, key=5),
        Column("QNAM", "Qualifier Variable Name", length=8, key=6),
        Column("QLABEL", "Qualifier Variable Label", length=40),
        Column("QVAL", "Data Value", length=200),
        Column("QORIG", "Origin", length=8),
        Column("QEVAL", "Evaluator", length=12),
    )

    def count(self, user) -> int:
        _, causality, queryset = self._source(user)
        totals = queryset.order_by().aggregate(
            events=Count("pk"), aware=Count("site_aware_at"), reported=Count("sae_reported_at")
        )
        per_drug = causality.model_class()._default_manager.filter(
            **{f"{causality.parent_field}__in": queryset.order_by().values("pk")}
        )
        # one irAE row per event, the SAE times when given, two rows (AERELn, AEACNn) per drug
        return totals["events"] + totals["aware"] + totals["reported"] + 2 * per_drug.count()

    # In SQL: an AE's rows share their first five values (the prefix); each qualifier is the
    # rest of a row (a tail). "g.pairs" holds the tails of the causality rows (AERELn, AEACNn per
    # drug, in the child order) joined by a line feed, which JSON text never holds raw: the
    # prefix goes in front of each.

    def _tail(self, qnam: str, qlabel: str, qval: str, qeval: str = SQL_NULL) -> str:
        parts = {"QNAM": qnam, "QLABEL": qlabel, "QVAL": qval, "QORIG": sql_json("CRF")}
        parts["QEVAL"] = qeval
        return " || ',' || ".join(parts[c.name] for c in self.columns[5:]) + " || ']'"

    def aggregates_sql(self, order) -> str:
        drugs = [(drug.value, drug_number(drug), drug_name(drug)) for drug in StudyDrug]
        causality = self._tail(
            sql_case("c.x_drug", {d: f"AEREL{n}" for d, n, _ in drugs}, default="NULL"),
            sql_case(
                "c.x_drug", {d: f"Causality to {name}" for d, _, name in drugs}, default="NULL"
            ),
            sql_case("c.x_causality", AEREL, default="NULL"),
            sql_json("INVESTIGATOR"),
        )
        action = self._tail(
            sql_case("c.x_drug", {d: f"AEACN{n}" for d, n, _ in drugs}, default="NULL"),
            sql_case(
                "c.x_drug", {d: f"Action Taken with {name}" for d, _, name in drugs}, default="NULL"
            ),
            sql_case("c.x_action_taken", AEACN, default="NULL"),
        )
        sql = dialect()
        pair = f"{causality} || {sql.newline} || {action}"
        return f"{sql.joined(pair, sql.newline, order)} AS pairs"

    def line_sql(self) -> str:
        """Each AE's rows joined by line feeds."""
        values = {
            "STUDYID": sql_json(study_id()),
            "RDOMAIN": sql_json("AE"),
            "USUBJID": sql_usubjid("a.x_subject"),
            "IDVAR": sql_json("AESEQ"),
            "IDVARVAL": sql_str("a.x_ae_number"),
        }
        prefix = sql_row([values[c.name] for c in self.columns[:5]])[: -len("']'")] + "','"
        irae = self._tail(
            sql_json("AEIRAE"),
            sql_json("Immune-Related Adverse Event"),
            sql_yn("a.x_immune_related"),
        )
        times = [
            ("a.x_site_aware_at", "SAEAWDTC", "Date/Time Site Aware of SAE"),
            ("a.x_sae_reported_at", "SAERPDTC", "Date/Time SAE Reported to Sponsor"),
        ]
        newline = dialect().newline
        body = [f"COALESCE(g.pairs || {newline}, '')", irae]
        for expr, qnam, qlabel in times:
            tail = self._tail(sql_json(qnam), sql_json(qlabel), sql_dtc(expr))
            body.append(f"(CASE WHEN {expr} IS NOT NULL THEN {newline} || {tail} ELSE '' END)")
        return f"{prefix} || replace({' || '.join(body)}, {newline}, {newline} || {prefix})"
