"""Reading and loading the CTCAE v5.0 dictionary (``manage.py load_ctcae PATH``).

The workbook and the CSV are normalized the same way, so both load identical data. The whole
file is checked before anything is written (a file that is not the complete dictionary is
refused); loading is an audited upsert by MedDRA code, so a second load changes nothing, and
terms the file lacks are kept because AEs may be coded to them.
"""

from __future__ import annotations

import csv
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import transaction

from core.audit import audited_save
from core.errors import DomainError

from .models import GRADES, OTHER_SPECIFY_SUFFIX, CtcaeTerm

SHEET = "CTCAE v5.0 Clean Copy"
EXPECTED_TERMS = 837
EXPECTED_SOCS = 26
FIELDS = ("meddra_code", "soc", "term", *(f"grade{g}" for g in GRADES), "definition")
TERM_FIELDS = (*FIELDS[1:], "grades", "is_other_specify")
# Column headings of each format, in the order of FIELDS.
XLSX_COLUMNS = (
    "MedDRA Code",
    "MedDRA SOC",
    "CTCAE Term",
    *(f"Grade {g}" for g in GRADES),
    "Definition",
)
CSV_COLUMNS = FIELDS
MAX_ERRORS_SHOWN = 5


class CtcaeFileError(DomainError):
    """The file is not a complete, well-formed CTCAE v5.0 dictionary; nothing was loaded."""


@dataclass
class LoadResult:
    file_name: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    not_in_file: int = 0
    updated_terms: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = (
            f"{self.file_name}: {self.created} created, {self.updated} updated, "
            f"{self.unchanged} unchanged"
        )
        if self.not_in_file:
            text += f"; {self.not_in_file} terms in the database are not in this file (kept)"
        return text + "."


def clean_cell(value) -> str:
    """One cell as text: NBSPs to spaces, every line stripped, a lone "-" means empty."""
    if value is None:
        return ""
    text = str(value).replace("\xa0", " ").replace("\r\n", "\n").replace("\r", "\n")
    text = "\n".join(line.strip() for line in text.split("\n")).strip()
    return "" if text == "-" else text


def _heading(value) -> str:
    return re.sub(r"\s+", " ", clean_cell(value)).casefold()


def _column_map(header, expected: tuple[str, ...], name: str) -> list[int]:
    """Index of each expected column in ``header``; refuses a file whose columns are wrong."""
    found = [_heading(h) for h in header]
    missing = [col for col in expected if _heading(col) not in found]
    if missing:
        raise CtcaeFileError(
            f"{name} does not have the CTCAE columns: missing "
            f"{', '.join(repr(m) for m in missing)} (expected {', '.join(expected)})."
        )
    return [found.index(_heading(col)) for col in expected]


def _rows_from_xlsx(path: Path) -> list[tuple[int, list]]:
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
        raise CtcaeFileError(
            f"{path.name} is not a readable Excel workbook (it may be truncated or damaged)."
        ) from exc
    try:
        if SHEET not in workbook.sheetnames:
            raise CtcaeFileError(
                f'{path.name} has no sheet "{SHEET}" (sheets: {", ".join(workbook.sheetnames)}).'
            )
        rows = workbook[SHEET].iter_rows(values_only=True)
        header = next(rows, None)
        if header is None:
            raise CtcaeFileError(f'The sheet "{SHEET}" of {path.name} is empty.')
        columns = _column_map(header, XLSX_COLUMNS, path.name)
        out = []
        for number, row in enumerate(rows, start=2):
            if row is None or all(clean_cell(c) == "" for c in row):
                continue
            out.append((number, [row[i] if i < len(row) else None for i in columns]))
        return out
    except (zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
        raise CtcaeFileError(
            f"{path.name} could not be read to the end (it may be truncated or damaged)."
        ) from exc
    finally:
        workbook.close()


def _rows_from_csv(path: Path) -> list[tuple[int, list]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise CtcaeFileError(f"{path.name} is empty.")
            columns = _column_map(header, CSV_COLUMNS, path.name)
            out = []
            for row in reader:
                number = reader.line_num
                if all(clean_cell(c) == "" for c in row):
                    continue
                if len(row) != len(header):
                    raise CtcaeFileError(
                        f"{path.name} line {number} has {len(row)} cells where the header has "
                        f"{len(header)}: the file is truncated or malformed."
                    )
                out.append((number, [row[i] for i in columns]))
            return out
    except UnicodeDecodeError as exc:
        raise CtcaeFileError(f"{path.name} is not UTF-8 text.") from exc
    except csv.Error as exc:
        raise CtcaeFileError(f"{path.name} is not a well-formed CSV file: {exc}.") from exc


READERS = {".xlsx": _rows_from_xlsx, ".csv": _rows_from_csv}


def _checked_path(path: Path) -> Path:
    if path.suffix.lower() not in READERS:
        raise CtcaeFileError(
            f"{path.name}: load_ctcae reads NCI's CTCAE workbook (.xlsx) or the cleaned CSV "
            f"(.csv), not {path.suffix or 'a file without an extension'}."
        )
    if not path.is_file():
        raise CtcaeFileError(f"There is no file {path}.")
    if path.stat().st_size == 0:
        raise CtcaeFileError(f"{path.name} is empty.")
    return path


def _term_of_row(cells) -> dict:
    """One row as model fields: cells cleaned, the MedDRA code as digits, the grades derived."""
    values = dict(zip(FIELDS, (clean_cell(c) for c in cells), strict=True))
    code = values["meddra_code"]
    if code.endswith(".0") and code[:-2].isdigit():  # a number cell read as float
        values["meddra_code"] = code[:-2]
    values["grades"] = "".join(str(g) for g in GRADES if values[f"grade{g}"])
    values["is_other_specify"] = values["term"].endswith(OTHER_SPECIFY_SUFFIX)
    return values


def _row_errors(values: dict, where: str) -> list[str]:
    code = values["meddra_code"]
    errors = []
    if not re.fullmatch(r"\d{8}", code):
        errors.append(f"{where}: the MedDRA code {code!r} is not 8 digits")
    if not values["soc"]:
        errors.append(f"{where}: no SOC")
    if not values["term"]:
        errors.append(f"{where}: no term")
    if not values["grades"]:
        errors.append(f"{where} ({values['term'] or code}): no grade exists for the term")
    return errors


def _refuse_errors(path: Path, errors: list[str]) -> None:
    if not errors:
        return
    shown = "; ".join(errors[:MAX_ERRORS_SHOWN])
    more = len(errors) - MAX_ERRORS_SHOWN
    raise CtcaeFileError(
        f"{path.name} has {len(errors)} error{'s' if len(errors) > 1 else ''}: {shown}"
        + (f"; and {more} more" if more > 0 else "")
        + ". Nothing was loaded."
    )


def read_ctcae_file(path) -> list[dict]:
    """The terms of a CTCAE v5.0 file as dicts of model fields; refuses a malformed file."""
    path = _checked_path(Path(path))
    errors: list[str] = []
    terms: list[dict] = []
    first_row = {"meddra_code": {}, "term": {}}  # value -> the row it first appeared on
    for number, cells in READERS[path.suffix.lower()](path):
        values = _term_of_row(cells)
        where = f"row {number}"
        errors += _row_errors(values, where)
        for name, label in (("meddra_code", "MedDRA code"), ("term", "term")):
            seen = first_row[name].setdefault(values[name], number)
            if seen != number:
                shown = values[name] if name == "meddra_code" else repr(values[name])
                errors.append(f"{where}: {label} {shown} already on row {seen}")
        terms.append(values)
    _refuse_errors(path, errors)
    if not terms:
        raise CtcaeFileError(f"{path.name} has no terms.")
    socs = {t["soc"] for t in terms}
    if len(terms) != EXPECTED_TERMS or len(socs) != EXPECTED_SOCS:
        raise CtcaeFileError(
            f"{path.name} has {len(terms)} terms in {len(socs)} SOCs; CTCAE v5.0 has "
            f"{EXPECTED_TERMS} terms in {EXPECTED_SOCS} SOCs: the file is truncated or not "
            "CTCAE v5.0. Nothing was loaded."
        )
    return terms


def _validate(term: CtcaeTerm, where: str) -> None:
    try:
        term.full_clean(validate_unique=False)
    except ValidationError as exc:
        raise CtcaeFileError(f"{where}: {'; '.join(exc.messages)}") from exc


def load_ctcae(path, *, user=None) -> LoadResult:
    """Upsert the dictionary from ``path`` (idempotent); all or nothing."""
    path = Path(path)
    rows = read_ctcae_file(path)
    reason = f"Loaded from {path.name}"
    result = LoadResult(file_name=path.name)
    file_codes = {row["meddra_code"] for row in rows}
    with transaction.atomic():
        existing = {t.meddra_code: t for t in CtcaeTerm.objects.select_for_update()}
        taken_names = {t.term: code for code, t in existing.items()}
        new, changed = [], []
        for row in rows:
            term = existing.get(row["meddra_code"])
            if term is None:
                term = CtcaeTerm(**row)
                _validate(term, f"{row['term']} ({row['meddra_code']})")
                new.append(term)
                continue
            if all(getattr(term, f) == row[f] for f in TERM_FIELDS):
                result.unchanged += 1
                continue
            for name in TERM_FIELDS:
                setattr(term, name, row[name])
            _validate(term, f"{row['term']} ({row['meddra_code']})")
            changed.append(term)
        # A term name held by another code of the database (a renamed term) would clash.
        for term in new + changed:
            holder = taken_names.get(term.term)
            if holder is not None and holder != term.meddra_code and holder not in file_codes:
                raise CtcaeFileError(
                    f"The term {term.term!r} ({term.meddra_code}) is already in the database "
                    f"under MedDRA code {holder}, which this file does not have. Nothing was "
                    "loaded."
                )
        for term in changed:
            audited_save(term, user=user, reason=reason)
            result.updated_terms.append(term.term)
        CtcaeTerm.objects.bulk_create_with_history(new, user=user, reason=reason)
        result.updated = len(changed)
        result.created = len(new)
        result.not_in_file = len(set(existing) - file_codes)
    return result
