"""RECIST v1.1 response derivation: pure and deterministic (no database, no Django models).

Services, edit checks, pages and exports all derive the response from these functions, so they
give the same answer. Measurements are ``Decimal`` millimetres compared exactly at the 20 %, 30 %
and 5 mm thresholds. The rules (Eisenhauer et al., Eur J Cancer 2009;45:228-247) and this
module's readings of them are in README ("RECIST 1.1 derivation").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

PD_RELATIVE_INCREASE = Decimal(20)  # percent, from the nadir
PD_ABSOLUTE_INCREASE = Decimal(5)  # millimetres, from the nadir
PR_RELATIVE_DECREASE = Decimal(30)  # percent, from the baseline
NODE_NORMAL_BELOW = Decimal(10)  # millimetres short axis: a node under this is normal
CONFIRMATION_DAYS = 28
SD_MIN_DAYS = 42


class Response(StrEnum):
    """Responses at a time point (the values are the CDISC RS controlled terms)."""

    CR = "CR"
    PR = "PR"
    SD = "SD"
    NON_CR_NON_PD = "NON-CR/NON-PD"
    PD = "PD"
    NE = "NE"

    @property
    def label(self) -> str:
        return RESPONSE_LABELS[self]


RESPONSE_LABELS = {
    Response.CR: "Complete response (CR)",
    Response.PR: "Partial response (PR)",
    Response.SD: "Stable disease (SD)",
    Response.NON_CR_NON_PD: "Non-CR/non-PD",
    Response.PD: "Progressive disease (PD)",
    Response.NE: "Not evaluable (NE)",
}


class NonTargetStatus(StrEnum):
    """One non-target lesion at a follow-up assessment."""

    ABSENT = "absent"  # disappeared (a node: non-pathological, < 10 mm short axis)
    PRESENT = "present"  # present, not unequivocally progressed
    PROGRESSION = "progression"  # unequivocal progression
    NOT_EVALUATED = "not_evaluated"


def mm(value) -> Decimal | None:
    """A measurement in millimetres as a Decimal (None stays None: not evaluated)."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    return Decimal(str(value))


@dataclass(frozen=True)
class TargetLesion:
    """A baseline target lesion: ``diameter`` is the longest diameter, a node's short axis."""

    key: object
    diameter: Decimal
    lymph_node: bool = False

    def __post_init__(self):
        object.__setattr__(self, "diameter", mm(self.diameter))


@dataclass(frozen=True)
class Assessment:
    """A follow-up assessment: ``targets`` maps each baseline target's key to its diameter (mm;
    None or missing: not evaluated), ``non_targets`` each non-target's key to its status;
    ``new_lesions`` True when an unequivocal new lesion was seen."""

    day: date
    targets: Mapping[object, object] = field(default_factory=dict)
    non_targets: Mapping[object, NonTargetStatus | str] = field(default_factory=dict)
    new_lesions: bool = False


@dataclass(frozen=True)
class TimePoint:
    """What the rules derive for one assessment."""

    day: date
    target_sum: Decimal | None  # None: no target lesion measured at all
    complete: bool  # every target measured
    baseline_sum: Decimal | None
    nadir: Decimal | None  # the smallest complete sum before this assessment (baseline included)
    change_from_baseline: Decimal | None  # percent, one decimal
    change_from_nadir: Decimal | None  # percent, one decimal
    target: Response | None  # None: no target lesion at baseline
    non_target: Response | None  # None: no non-target lesion at baseline
    new_lesions: bool
    overall: Response


def target_sum(lesions: Sequence[TargetLesion], diameters: Mapping) -> tuple[Decimal, bool]:
    """The sum of the diameters measured, and whether every lesion was measured."""
    total, complete = Decimal(0), True
    for lesion in lesions:
        value = mm(diameters.get(lesion.key))
        if value is None:
            complete = False
        else:
            total += value
    return total, complete


def is_progression(total: Decimal, nadir: Decimal) -> bool:
    """>= 20 % above the nadir and >= 5 mm above it (with a nadir of 0, the 5 mm decide)."""
    increase = total - nadir
    return increase >= PD_ABSOLUTE_INCREASE and increase * 100 >= nadir * PD_RELATIVE_INCREASE


def is_partial_response(total: Decimal, baseline: Decimal) -> bool:
    """>= 30 % below the baseline sum."""
    return (baseline - total) * 100 >= baseline * PR_RELATIVE_DECREASE


def is_complete_response(lesions: Sequence[TargetLesion], diameters: Mapping) -> bool:
    """Every non-nodal target gone, every nodal target under 10 mm short axis (all measured)."""
    for lesion in lesions:
        value = mm(diameters.get(lesion.key))
        if value is None:
            return False
        if lesion.lymph_node and value >= NODE_NORMAL_BELOW:
            return False
        if not lesion.lymph_node and value != 0:
            return False
    return True


def target_response(
    lesions: Sequence[TargetLesion], diameters: Mapping, *, baseline: Decimal, nadir: Decimal
) -> Response | None:
    """The target-lesion response at one assessment (None when there is no target lesion)."""
    if not lesions:
        return None
    total, complete = target_sum(lesions, diameters)
    if not complete:
        # The lesions measured already grew enough: the missing ones can only add to it.
        return Response.PD if is_progression(total, nadir) else Response.NE
    if is_complete_response(lesions, diameters):
        return Response.CR
    if is_progression(total, nadir):
        return Response.PD
    if is_partial_response(total, baseline):
        return Response.PR
    return Response.SD


def non_target_response(
    keys: Iterable, statuses: Mapping[object, NonTargetStatus | str]
) -> Response | None:
    """The non-target response (None when there is no non-target lesion at baseline)."""
    keys = list(keys)
    if not keys:
        return None
    found = [NonTargetStatus(statuses.get(key, NonTargetStatus.NOT_EVALUATED)) for key in keys]
    if NonTargetStatus.PROGRESSION in found:
        return Response.PD
    if NonTargetStatus.NOT_EVALUATED in found:
        return Response.NE
    if all(status == NonTargetStatus.ABSENT for status in found):
        return Response.CR
    return Response.NON_CR_NON_PD


def overall_response(
    target: Response | None, non_target: Response | None, new_lesions: bool
) -> Response:
    """RECIST 1.1 Table 1 (target disease) and Table 2 (non-target disease only).

    Table 1: CR/CR/no -> CR; CR/non-CR-non-PD/no -> PR; CR/NE/no -> PR; PR/non-PD or NE/no -> PR;
    SD/non-PD or NE/no -> SD; NE/non-PD/no -> NE; PD/any/any -> PD; any/PD/any -> PD;
    any/any/yes -> PD. Table 2: CR/no -> CR; non-CR-non-PD/no -> non-CR/non-PD; NE/no -> NE;
    PD/any -> PD; any/yes -> PD. With no lesion of either kind at baseline nothing can be
    evaluated but a new lesion: NE.
    """
    if new_lesions or target == Response.PD or non_target == Response.PD:
        return Response.PD
    if target is None:
        if non_target in (Response.CR, Response.NON_CR_NON_PD, Response.NE):
            return non_target
        return Response.NE
    if target == Response.CR:
        return Response.CR if non_target in (Response.CR, None) else Response.PR
    if target in (Response.PR, Response.SD, Response.NE):
        return target
    raise ValueError(f"Not a target response: {target!r}")


def _percent(change: Decimal, reference: Decimal | None) -> Decimal | None:
    if not reference:
        return None
    return (change * 100 / reference).quantize(Decimal("0.1"))


def derive(
    lesions: Sequence[TargetLesion],
    non_target_keys: Iterable,
    assessments: Iterable[Assessment],
) -> list[TimePoint]:
    """Every assessment's responses, in date order (the nadir runs through them)."""
    lesions = list(lesions)
    non_target_keys = list(non_target_keys)
    baseline = sum((lesion.diameter for lesion in lesions), Decimal(0)) if lesions else None
    nadir = baseline
    points = []
    for assessment in sorted(assessments, key=lambda a: a.day):
        if lesions:
            total, complete = target_sum(lesions, assessment.targets)
            measured_any = any(
                mm(assessment.targets.get(lesion.key)) is not None for lesion in lesions
            )
            target = target_response(lesions, assessment.targets, baseline=baseline, nadir=nadir)
        else:
            total, complete, measured_any, target = None, True, False, None
        non_target = non_target_response(non_target_keys, assessment.non_targets)
        shown = total if measured_any else None
        points.append(
            TimePoint(
                day=assessment.day,
                target_sum=shown,
                complete=complete,
                baseline_sum=baseline,
                nadir=nadir,
                change_from_baseline=(
                    _percent(total - baseline, baseline) if lesions and complete else None
                ),
                change_from_nadir=_percent(total - nadir, nadir) if lesions and complete else None,
                target=target,
                non_target=non_target,
                new_lesions=bool(assessment.new_lesions),
                overall=overall_response(target, non_target, bool(assessment.new_lesions)),
            )
        )
        if lesions and complete and total < nadir:
            nadir = total
    return points


@dataclass(frozen=True)
class Best:
    """The best overall response and the assessment dates behind it."""

    response: Response
    day: date | None = None  # the assessment that showed it
    confirmed_on: date | None = None  # the confirming assessment (CR, PR)


def best_overall_response(
    points: Iterable[tuple[date, Response]],
    *,
    randomized_on: date | None,
    confirmation_days: int = CONFIRMATION_DAYS,
    sd_min_days: int = SD_MIN_DAYS,
) -> Best:
    """The best overall response with confirmation (RECIST 1.1 section 4.4 and Table 3).

    ``points`` are (date, overall response) pairs. Only the assessments up to and including the
    first PD count. A CR is confirmed by a later CR, a PR by a later PR or CR, at least
    ``confirmation_days`` after it (assessments in between may be NE). Unconfirmed, the
    response falls back to SD if an assessment of SD or better (non-CR/non-PD for non-target
    disease only) lies at least ``sd_min_days`` after randomization; else PD if progression was
    documented; else NE. Without a randomization date SD cannot be shown: NE.
    """
    ordered = []
    for day, response in sorted(points, key=lambda p: p[0]):
        ordered.append((day, Response(response)))
        if response == Response.PD:
            break
    confirm = timedelta(days=confirmation_days)

    def confirmed(first: Response, by: tuple[Response, ...]) -> Best | None:
        for i, (day, response) in enumerate(ordered):
            if response != first:
                continue
            for later_day, later in ordered[i + 1 :]:
                if later in by and later_day - day >= confirm:
                    return Best(first, day, later_day)
        return None

    found = confirmed(Response.CR, (Response.CR,)) or confirmed(
        Response.PR, (Response.PR, Response.CR)
    )
    if found:
        return found
    stable = _stable_disease(ordered, randomized_on, sd_min_days)
    if stable:
        return stable
    if ordered and ordered[-1][1] == Response.PD:
        return Best(Response.PD, ordered[-1][0])
    return Best(Response.NE)


def _stable_disease(ordered, randomized_on: date | None, sd_min_days: int) -> Best | None:
    """SD (non-CR/non-PD for non-target disease only) when an assessment of SD or better lies at
    least ``sd_min_days`` after randomization."""
    if randomized_on is None:
        return None
    earliest = randomized_on + timedelta(days=sd_min_days)
    stable = [
        (day, response)
        for day, response in ordered
        if day >= earliest
        and response in (Response.CR, Response.PR, Response.SD, Response.NON_CR_NON_PD)
    ]
    for day, response in stable:
        if response != Response.NON_CR_NON_PD:
            return Best(Response.SD, day)
    return Best(Response.NON_CR_NON_PD, stable[0][0]) if stable else None


def first_progression(points: Iterable[tuple[date, Response]]) -> date | None:
    """The date of the first assessment whose overall response is PD."""
    days = [day for day, response in points if Response(response) == Response.PD]
    return min(days) if days else None


def is_evaluable(response: Response | str | None) -> bool:
    """An overall response that evaluates the disease (for censoring PFS): anything but NE."""
    return response is not None and Response(response) != Response.NE
