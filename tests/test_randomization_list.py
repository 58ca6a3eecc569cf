"""The randomization list: seeded permuted blocks per stratum, generation, verification, export."""

import csv
import io
from collections import Counter

import pytest
from django.core.management import CommandError, call_command

from core.errors import AccessDenied, BulkChangeRefused, ReasonRequired
from core.roles import Role
from randomization import listgen, selectors, services
from randomization.listgen import InvalidListParameters
from randomization.models import RandomizationList, Slot, Stratum

from .builders import make_user
from .builders.tamper import behind_the_audit

# --- The algorithm (no database) -----------------------------------------------------------------


def test_eight_strata_in_documented_order():
    assert len(listgen.STRATA) == 8
    assert listgen.STRATA[0].key == (False, 0, False)
    assert listgen.STRATA[1].key == (False, 0, True)
    assert listgen.STRATA[2].key == (False, 1, False)
    assert listgen.STRATA[7].key == (True, 1, True)
    assert len(listgen.STRATUM_BY_KEY) == 8


def test_same_seed_same_list_and_different_seeds_differ():
    first = listgen.generate(12345, 100, (4, 6))
    again = listgen.generate(12345, 100, (4, 6))
    other = listgen.generate(12346, 100, (4, 6))
    assert first == again
    assert listgen.checksum(first) == listgen.checksum(again)
    assert [s.arm for s in first] != [s.arm for s in other]
    assert listgen.checksum(first) != listgen.checksum(other)


def test_strata_differ_from_each_other_for_one_seed():
    slots = listgen.generate(7, 60, (4, 6))
    per_stratum = {n: [s.arm for s in slots if s.stratum == n] for n in range(1, 9)}
    assert len({tuple(arms) for arms in per_stratum.values()}) == 8


def test_blocks_are_balanced_permuted_and_exactly_fill_the_stratum():
    slots = listgen.generate(99, 500, (4, 6))
    assert len(slots) == 8 * 500
    sizes_used = Counter()
    for stratum in range(1, 9):
        mine = [s for s in slots if s.stratum == stratum]
        assert [s.sequence for s in mine] == list(range(1, 501))
        blocks = {}
        for s in mine:
            blocks.setdefault(s.block_number, []).append(s)
        for number, block in blocks.items():
            assert len(block) == block[0].block_size, number
            arms = Counter(s.arm for s in block)
            assert arms["A"] == arms["B"] == block[0].block_size // 2
            sizes_used[block[0].block_size] += 1
        # Balanced at every block boundary, hence at the end.
        assert Counter(s.arm for s in mine) == {"A": 250, "B": 250}
    assert set(sizes_used) == {4, 6}  # both sizes chosen at random
    # The order within blocks is permuted: all 6 arrangements of a block of 4 occur.
    arrangements = {
        tuple(s.arm for s in slots if (s.stratum, s.block_number) == key)
        for key in {(s.stratum, s.block_number) for s in slots if s.block_size == 4}
    }
    assert len(arrangements) == 6


def test_prefix_of_a_stratum_does_not_depend_on_list_length():
    short = [s for s in listgen.generate(5, 60, (4, 6)) if s.stratum == 3][:40]
    long = [s for s in listgen.generate(5, 600, (4, 6)) if s.stratum == 3][:40]
    assert [s.arm for s in short] == [s.arm for s in long]


def test_randomization_numbers():
    slots = listgen.generate(1, 10, (4, 6))
    assert slots[0].randomization_number == "R1-0001"
    assert slots[-1].randomization_number == "R8-0010"


@pytest.mark.parametrize(
    "text, message",
    [
        ("4,5", "must be even"),
        ("3", "must be even"),
        ("0", "must be even"),
        ("4,x", "'x' is not a whole number"),
        ("4,,6", "separated by commas"),
        ("4,4", "repeated"),
        ("22", "above the maximum"),
    ],
)
def test_bad_block_sizes(text, message):
    with pytest.raises(InvalidListParameters, match=message):
        listgen.parse_block_sizes(text)


@pytest.mark.parametrize(
    "value, message",
    [("0", "at least 1"), ("abc", "whole number"), ("-5", "whole number"), ("1.5", "whole")],
)
def test_bad_slots_per_stratum(value, message):
    with pytest.raises(InvalidListParameters, match=message):
        listgen.parse_slots_per_stratum(value)


def test_slots_that_blocks_cannot_fill_are_refused():
    with pytest.raises(InvalidListParameters, match="cannot be filled with complete blocks"):
        listgen.check_parameters(2, (4, 6))
    with pytest.raises(InvalidListParameters, match="cannot be filled"):
        listgen.check_parameters(7, (4, 6))
    listgen.check_parameters(10, (4, 6))  # 4 + 6


def test_bad_seed():
    with pytest.raises(InvalidListParameters, match="whole number"):
        listgen.parse_seed("seed")
    with pytest.raises(InvalidListParameters, match="at most"):
        listgen.parse_seed(str(2**63))


# --- Generation in the database ------------------------------------------------------------------


@pytest.fixture
def statistician(db):
    return make_user(Role.STATISTICIAN, username="stats", is_staff=True)


def test_generate_records_seed_parameters_author_and_slots(statistician):
    rlist = services.generate_randomization_list(
        seed=424242, slots_per_stratum=20, block_sizes="6,4", user=statistician
    )
    assert (rlist.seed, rlist.slots_per_stratum, rlist.block_sizes) == (424242, 20, "4,6")
    assert rlist.generated_by == statistician and rlist.generated_by_name == "stats"
    assert rlist.active and rlist.algorithm == listgen.ALGORITHM
    assert Stratum.objects.filter(rlist=rlist).count() == 8
    assert Slot.objects.filter(rlist=rlist).count() == 160
    assert rlist.checksum == listgen.checksum(listgen.generate(424242, 20, (4, 6)))
    # The audited bulk path: one '+' history record per slot and stratum, with the author.
    assert Slot.history.filter(history_type="+", history_user=statistician).count() == 160
    assert Stratum.history.count() == 8
    assert rlist.history.get().history_user == statistician
    # Stored list equals the algorithm's output.
    assert services.stored_slot_defs(rlist) == listgen.generate(424242, 20, (4, 6))


def test_two_lists_from_the_same_seed_are_identical(statistician):
    first = services.generate_randomization_list(seed=31, slots_per_stratum=30, user=statistician)
    first_slots = services.stored_slot_defs(first)
    services.retire_randomization_list(first, user=statistician, reason="Test of reproducibility")
    second = services.generate_randomization_list(seed=31, slots_per_stratum=30)
    assert services.stored_slot_defs(second) == first_slots
    assert second.checksum == first.checksum
    assert second.generated_by is None and second.generated_by_name.endswith("(shell)")


def test_second_active_list_is_refused(statistician):
    services.generate_randomization_list(seed=1, slots_per_stratum=10, user=statistician)
    with pytest.raises(services.ActiveListExists, match="a second active list is refused"):
        services.generate_randomization_list(seed=2, slots_per_stratum=10, user=statistician)
    assert RandomizationList.objects.count() == 1


def test_retire_needs_a_reason_and_an_unused_list(statistician):
    rlist = services.generate_randomization_list(seed=1, slots_per_stratum=10, user=statistician)
    with pytest.raises(ReasonRequired):
        services.retire_randomization_list(rlist, user=statistician, reason=" ")
    services.retire_randomization_list(rlist, user=statistician, reason="Wrong block sizes")
    assert selectors.active_list() is None
    assert rlist.history.first().history_change_reason == "Wrong block sizes"
    with pytest.raises(services.RandomizationError, match="already inactive"):
        services.retire_randomization_list(rlist, user=statistician, reason="again")


def test_only_a_statistician_generates(db, site):
    coordinator = make_user(Role.SITE_STAFF, site)
    with pytest.raises(AccessDenied, match="not a statistician"):
        services.generate_randomization_list(seed=1, slots_per_stratum=10, user=coordinator)
    assert not RandomizationList.objects.exists()


def test_slots_cannot_be_bulk_changed(statistician):
    services.generate_randomization_list(seed=1, slots_per_stratum=10, user=statistician)
    with pytest.raises(BulkChangeRefused):
        Slot.objects.update(arm="A")
    with pytest.raises(BulkChangeRefused):
        Slot.objects.all().delete()


def test_generation_makes_every_slot_of_8_x_500(statistician):
    rlist = services.generate_randomization_list(seed=8, slots_per_stratum=500, user=statistician)
    assert Slot.objects.filter(rlist=rlist).count() == 4000
    assert set(Slot.objects.filter(rlist=rlist).values_list("arm", flat=True)) == {"A", "B"}


# --- Commands ------------------------------------------------------------------------------------


def run(*args):
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_generate_command(statistician):
    output = run(
        "generate_randomization_list",
        "--seed",
        "777",
        "--slots-per-stratum",
        "24",
        "--block-sizes",
        "4,6",
        "--user",
        "stats",
    )
    assert "seed 777" in output and "8 strata × 24 slots" in output
    rlist = RandomizationList.objects.get()
    assert rlist.generated_by == statistician


@pytest.mark.parametrize(
    "args, message",
    [
        (["--seed", "1", "--block-sizes", "4,5"], "must be even"),
        (["--seed", "1", "--slots-per-stratum", "ten"], "whole number"),
        (["--seed", "1", "--slots-per-stratum", "0"], "at least 1"),
        (["--seed", "x"], "The seed must be a whole number"),
        (["--seed", "1", "--user", "nobody"], "There is no user 'nobody'"),
    ],
)
def test_generate_command_refuses_bad_arguments(db, args, message):
    with pytest.raises(CommandError, match=message):
        run("generate_randomization_list", *args)
    assert not RandomizationList.objects.exists()


def test_generate_command_refuses_second_active_list(statistician):
    run("generate_randomization_list", "--seed", "1", "--slots-per-stratum", "10")
    with pytest.raises(CommandError, match="second active list is refused"):
        run("generate_randomization_list", "--seed", "2", "--slots-per-stratum", "10")


def test_generate_command_exit_status_is_non_zero(db):
    from django.core.management import execute_from_command_line

    with pytest.raises(SystemExit) as exited:
        execute_from_command_line(
            ["manage.py", "generate_randomization_list", "--seed", "1", "--block-sizes", "3"]
        )
    assert exited.value.code != 0


def test_verify_ok_and_first_difference(statistician):
    rlist = services.generate_randomization_list(seed=55, slots_per_stratum=12, user=statistician)
    assert run("verify_randomization_list").startswith("OK: list #")
    # Tamper with one slot behind the service's back (as a database edit would).
    slot = Slot.objects.get(rlist=rlist, stratum__number=2, sequence=5)
    flipped = "B" if slot.arm == "A" else "A"
    behind_the_audit(Slot).filter(pk=slot.pk).update(arm=flipped)
    with pytest.raises(CommandError) as failed:
        run("verify_randomization_list", "--list", str(rlist.pk))
    assert "First difference at row 17, slot R2-0005" in str(failed.value)
    assert f"arm = {flipped}" in str(failed.value)


def test_verify_detects_a_missing_slot_and_a_wrong_checksum(statistician):
    rlist = services.generate_randomization_list(seed=56, slots_per_stratum=10, user=statistician)
    behind_the_audit(RandomizationList).filter(pk=rlist.pk).update(checksum="0" * 64)
    rlist.refresh_from_db()
    result = services.verify_randomization_list(rlist)
    assert not result.ok and "checksum" in result.message
    Slot._base_manager.filter(rlist=rlist, stratum__number=8, sequence=10)._raw_delete("default")
    result = services.verify_randomization_list(rlist)
    assert not result.ok and "79 slots; the seed gives 80" in result.message


def test_verify_command_without_list(db):
    with pytest.raises(CommandError, match="no active randomization list"):
        run("verify_randomization_list")
    with pytest.raises(CommandError, match="no randomization list #9"):
        run("verify_randomization_list", "--list", "9")
    with pytest.raises(CommandError, match="whole number"):
        run("verify_randomization_list", "--list", "x")


def test_export_command_csv(statistician, tmp_path):
    rlist = services.generate_randomization_list(seed=3, slots_per_stratum=10, user=statistician)
    target = tmp_path / "list.csv"
    call_command("export_randomization_list", "--output", str(target), stderr=io.StringIO())
    rows = list(csv.DictReader(target.open()))
    assert len(rows) == 80
    assert rows[0]["randomization_number"] == "R1-0001" and rows[0]["stratum"] == "S1"
    expected = listgen.generate(rlist.seed, 10, (4, 6))
    assert [r["arm"] for r in rows] == [s.arm for s in expected]
    assert all(r["subject_identifier"] == "" for r in rows)
    to_stdout = run("export_randomization_list")
    assert to_stdout.splitlines()[0].startswith("randomization_number,stratum,")
    with pytest.raises(CommandError, match="Cannot write"):
        call_command("export_randomization_list", "--output", str(tmp_path / "no" / "x.csv"))
