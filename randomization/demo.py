"""Demo randomization: the statistician's list (fixed seed) and the signed-eligible subjects
randomized by their site's staff.

* The list: seed ``DEMO_SEED``, blocks of 4 and 6, enough slots per stratum for the demo's size.
* Every subject the eligibility seeder left randomizable today
  (``eligibility.services.randomization_factors``) is randomized through ``services.randomize``,
  alternately by the site's coordinator and investigator, except the last one, left waiting so
  that the "Randomize" action can be tried in the demo.
* One randomized subject's ECOG is then corrected in the CRF (with a reason), so the balance
  report shows a stratification mismatch (the allocation stands).
"""

from __future__ import annotations

from core.errors import DomainError
from core.roles import Role

from . import listgen, services

DEMO_SEED = 20201001


def seed(ctx):
    from eligibility import services as eligibility_services

    statistician = ctx.users[Role.STATISTICIAN][0]
    # Enough slots even if every subject fell into one stratum; a multiple of 10 fills with 4 and 6.
    slots = min(listgen.MAX_SLOTS_PER_STRATUM, max(100, -(-ctx.n_subjects // 10) * 10))
    rlist = services.generate_randomization_list(
        seed=DEMO_SEED, slots_per_stratum=slots, block_sizes=(4, 6), user=statistician
    )

    ready = []
    for subject in ctx.subjects:
        try:
            eligibility_services.randomization_factors(subject, ctx.today)
        except DomainError:
            continue
        ready.append(subject)
    waiting = ready[-1:]
    randomized = []
    for i, subject in enumerate(ready[:-1]):
        role = Role.SITE_STAFF if i % 2 == 0 else Role.INVESTIGATOR
        services.randomize(subject, ctx.site_user(role, subject.site))
        randomized.append(subject)

    corrected = None
    if len(randomized) >= 3:
        corrected = randomized[1]
        current = eligibility_services.stratification_factors(corrected)
        eligibility_services.save_assessment(
            corrected,
            user=ctx.site_user(Role.SITE_STAFF, corrected.site),
            data={"ecog": 1 - current.ecog},
            reason="ECOG corrected after source data verification",
        )
    ctx.write(
        f"Randomization: list #{rlist.pk} (seed {DEMO_SEED}, 8 strata × {slots} slots), "
        f"{len(randomized)} subjects randomized"
        + (f", {waiting[0]} signed eligible and waiting to be randomized" if waiting else "")
        + (f", ECOG of {corrected} corrected after randomization (a mismatch)" if corrected else "")
    )
