"""The CTCAE v5.0 loader: NCI's workbook and the cleaned CSV, idempotent, all or nothing."""

import csv
import io
import shutil

import pytest
from django.core.management import CommandError, call_command

from adverse_events.ctcae import CtcaeFileError, clean_cell, load_ctcae, read_ctcae_file
from adverse_events.models import CtcaeTerm
from adverse_events.starter_terms import STARTER_TERMS

FIELDS = ("meddra_code", "soc", "term", "grades", "grade1", "grade2", "grade3", "grade4", "grade5")


def snapshot():
    return (
        list(CtcaeTerm.objects.order_by("meddra_code").values_list(*FIELDS, "definition")),
        CtcaeTerm.history.count(),
    )


def grades(name):
    return CtcaeTerm.objects.get(term=name).allowed_grades


def load(path):
    out = io.StringIO()
    call_command("load_ctcae", str(path), stdout=out)
    return out.getvalue()


# --- reading -----------------------------------------------------------------------------------


def test_cells_are_normalized():
    assert clean_cell(" -") == ""
    assert clean_cell("-") == ""
    assert clean_cell(None) == ""
    assert clean_cell("Mild;\xa0intervention not indicated ") == "Mild; intervention not indicated"
    assert clean_cell("Adult: a; \n \nPediatric: b") == "Adult: a;\n\nPediatric: b"


def test_workbook_and_csv_read_the_same_terms(reference_file):
    from_xlsx = read_ctcae_file(reference_file("CTCAE_v5.0.xlsx"))
    from_csv = read_ctcae_file(reference_file("ctcae_v5.csv"))
    assert len(from_xlsx) == len(from_csv) == 837
    assert from_xlsx == from_csv


def test_starter_set_agrees_with_the_official_dictionary(reference_file):
    official = {t["meddra_code"]: t for t in read_ctcae_file(reference_file("ctcae_v5.csv"))}
    assert 20 <= len(STARTER_TERMS) <= 40
    for code, soc, name, allowed in STARTER_TERMS:
        assert official[code]["term"] == name
        assert official[code]["soc"] == soc
        assert official[code]["grades"] == allowed, name


# --- the loaded dictionary -----------------------------------------------------------------------


def test_first_load_of_the_workbook_created_837_terms(ctcae_dictionary, ctcae):
    assert ctcae_dictionary.created + ctcae_dictionary.unchanged == 837
    assert ctcae_dictionary.updated == 0
    assert CtcaeTerm.objects.count() == 837
    assert CtcaeTerm.objects.values("soc").distinct().count() == 26


def test_grades_that_exist(ctcae):
    assert grades("Alopecia") == (1, 2)
    assert grades("Aspartate aminotransferase increased") == (1, 2, 3, 4)
    assert 5 not in grades("Palmar-plantar erythrodysesthesia syndrome")
    assert grades("Acidosis") == (1, 3, 4, 5)
    assert grades("Asystole") == (1, 4, 5)
    assert grades("Death NOS") == (5,)
    assert grades("Disease progression") == (5,)
    assert CtcaeTerm.objects.filter(grades__contains="5").count() == 494
    assert CtcaeTerm.objects.exclude(grades__contains="5").count() == 343


def test_grade_texts_and_definitions(ctcae):
    acidosis = CtcaeTerm.objects.get(term="Acidosis")
    assert acidosis.grade2 == ""
    assert acidosis.grade5 == "Death"
    anemia = CtcaeTerm.objects.get(meddra_code="10002272")
    assert anemia.term == "Anemia"
    assert anemia.soc == "Blood and lymphatic system disorders"
    assert anemia.definition.startswith("A disorder characterized by a reduction in the amount")
    assert "\xa0" not in "".join(
        "".join(row) for row in CtcaeTerm.objects.values_list("grade1", "grade2", "definition")
    )


def test_other_specify_terms(ctcae):
    others = CtcaeTerm.objects.filter(is_other_specify=True)
    assert others.count() == 26
    assert others.values("soc").distinct().count() == 26
    assert all(t.term.endswith(" - Other, specify") for t in others)
    assert not CtcaeTerm.objects.get(term="Hypertension").is_other_specify


def test_loaded_terms_have_history_with_the_file_name(ctcae):
    record = CtcaeTerm.objects.get(term="Alopecia").history.earliest("history_date")
    assert record.history_type == "+"
    assert record.history_change_reason.startswith("Loaded from ")


# --- idempotence -------------------------------------------------------------------------------


def test_csv_after_workbook_changes_nothing(ctcae, reference_file):
    before = snapshot()
    output = load(reference_file("ctcae_v5.csv"))
    assert "ctcae_v5.csv: 0 created, 0 updated, 837 unchanged." in output
    assert snapshot() == before


def test_loading_twice_changes_nothing(ctcae, reference_file):
    before = snapshot()
    first = load_ctcae(reference_file("CTCAE_v5.0.xlsx"))
    second = load_ctcae(reference_file("CTCAE_v5.0.xlsx"))
    assert (first.created, first.updated, first.unchanged) == (0, 0, 837)
    assert (second.created, second.updated, second.unchanged) == (0, 0, 837)
    assert snapshot() == before


def test_a_changed_term_is_updated_with_an_audited_reason(ctcae, reference_file):
    from core.audit import audited_save

    fatigue = CtcaeTerm.objects.get(term="Fatigue")
    fatigue.definition = "edited by hand"
    audited_save(fatigue, user=None, reason="test: simulate a local edit")
    result = load_ctcae(reference_file("ctcae_v5.csv"))
    assert (result.created, result.updated, result.unchanged) == (0, 1, 836)
    assert result.updated_terms == ["Fatigue"]
    fatigue.refresh_from_db()
    assert fatigue.definition.startswith("A disorder characterized by a state of generalized")
    latest = fatigue.history.latest("history_date")
    assert latest.history_type == "~"
    assert latest.history_change_reason == "Loaded from ctcae_v5.csv"


# --- refusals: nothing is loaded -----------------------------------------------------------------


@pytest.fixture
def csv_lines(reference_file):
    return reference_file("ctcae_v5.csv").read_text(encoding="utf-8").splitlines(keepends=True)


def refused(path, match):
    before = snapshot()
    with pytest.raises(CommandError, match=match):
        load(path)
    assert snapshot() == before


def write_rows(path, rows):
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    return path


@pytest.fixture
def csv_rows(reference_file):
    with reference_file("ctcae_v5.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def test_truncated_csv_is_refused(ctcae, tmp_path, csv_lines):
    path = tmp_path / "ctcae_v5.csv"
    path.write_text("".join(csv_lines[:400]), encoding="utf-8")
    refused(path, r"has \d+ terms in \d+ SOCs; CTCAE v5.0 has 837 terms in 26 SOCs")


def test_csv_cut_mid_row_is_refused(ctcae, tmp_path, reference_file):
    data = reference_file("ctcae_v5.csv").read_bytes()
    path = tmp_path / "ctcae_v5.csv"
    path.write_bytes(data[: len(data) // 2 + 37])
    refused(path, r"truncated")


def test_csv_with_wrong_columns_is_refused(ctcae, tmp_path, csv_rows):
    csv_rows[0][2] = "ctcae_term"
    path = write_rows(tmp_path / "renamed.csv", csv_rows)
    refused(path, r"does not have the CTCAE columns: missing 'term'")


def test_csv_with_a_missing_column_is_refused(ctcae, tmp_path, csv_rows):
    path = write_rows(tmp_path / "no_grade5.csv", [row[:7] + row[8:] for row in csv_rows])
    refused(path, r"missing 'grade5'")


def test_term_without_grades_is_refused(ctcae, tmp_path, csv_rows):
    for i in range(3, 8):
        csv_rows[5][i] = " - "
    path = write_rows(tmp_path / "nogrades.csv", csv_rows)
    refused(path, rf"row 6 \({csv_rows[5][2]}\): no grade exists for the term")


def test_duplicate_code_and_bad_code_are_refused(ctcae, tmp_path, csv_rows):
    csv_rows[10][0] = csv_rows[9][0]
    csv_rows[20][0] = "12AB"
    path = write_rows(tmp_path / "dupes.csv", csv_rows)
    refused(path, r"has 2 errors: .*MedDRA code .* already on row 10.*'12AB' is not 8 digits")


def test_empty_files_are_refused(ctcae, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    refused(empty, r"empty.csv is empty")
    header_only = tmp_path / "header.csv"
    header_only.write_text(
        ",".join(
            ["meddra_code", "soc", "term"] + [f"grade{g}" for g in range(1, 6)] + ["definition"]
        )
        + "\n"
    )
    refused(header_only, r"has no terms")


def test_missing_file_and_wrong_extension_are_refused(ctcae, tmp_path, reference_file):
    refused(tmp_path / "nowhere.csv", r"There is no file .*nowhere.csv")
    text = tmp_path / "ctcae.txt"
    shutil.copy(reference_file("ctcae_v5.csv"), text)
    refused(text, r"reads NCI's CTCAE workbook \(.xlsx\) or the cleaned CSV \(.csv\), not .txt")


def test_truncated_workbook_is_refused(ctcae, tmp_path, reference_file):
    data = reference_file("CTCAE_v5.0.xlsx").read_bytes()
    path = tmp_path / "CTCAE_v5.0.xlsx"
    path.write_bytes(data[: len(data) // 2])
    refused(path, r"not a readable Excel workbook")


def test_workbook_without_the_clean_copy_sheet_is_refused(ctcae, tmp_path):
    import openpyxl

    workbook = openpyxl.Workbook()
    workbook.active.title = "Something else"
    path = tmp_path / "other.xlsx"
    workbook.save(path)
    refused(path, r'has no sheet "CTCAE v5.0 Clean Copy"')


def test_not_utf8_csv_is_refused(ctcae, tmp_path, csv_lines):
    path = tmp_path / "latin1.csv"
    path.write_bytes("".join(csv_lines).encode("utf-8").replace(b"\xe2\x89\xa5", b"\xff"))
    refused(path, r"is not UTF-8 text")


def test_read_errors_are_domain_errors(tmp_path):
    with pytest.raises(CtcaeFileError, match="is empty"):
        path = tmp_path / "x.csv"
        path.write_text("")
        read_ctcae_file(path)


def test_command_exits_non_zero_with_the_sentence(ctcae, tmp_path, capsys):
    from django.core.management import ManagementUtility

    path = tmp_path / "bad.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(SystemExit) as exit_info:
        ManagementUtility(["manage.py", "load_ctcae", str(path)]).execute()
    assert exit_info.value.code == 1
    assert "bad.csv does not have the CTCAE columns" in capsys.readouterr().err
