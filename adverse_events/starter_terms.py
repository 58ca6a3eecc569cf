"""A small starter set of CTCAE v5.0 terms for the zero-setup demo, written by hand.

The full dictionary (837 terms) is loaded with ``manage.py load_ctcae PATH``; the demo seeder
loads this set only when the dictionary is empty. Each entry is (MedDRA code, SOC, term, grades
that exist). A later full load fills in the grade texts and definitions of these terms.
"""

from __future__ import annotations

from django.db import transaction

from .models import OTHER_SPECIFY_SUFFIX, CtcaeTerm

STARTER_REASON = "Loaded from the demo starter set (adverse_events/starter_terms.py)"

STARTER_TERMS: list[tuple[str, str, str, str]] = [
    # Bevacizumab / VEGF pathway
    ("10020772", "Vascular disorders", "Hypertension", "12345"),
    ("10037032", "Renal and urinary disorders", "Proteinuria", "123"),
    ("10055356", "Gastrointestinal disorders", "Upper gastrointestinal hemorrhage", "12345"),
    ("10015453", "Gastrointestinal disorders", "Esophageal varices hemorrhage", "2345"),
    ("10015090", "Respiratory, thoracic and mediastinal disorders", "Epistaxis", "12345"),
    # Sorafenib
    (
        "10054524",
        "Skin and subcutaneous tissue disorders",
        "Palmar-plantar erythrodysesthesia syndrome",
        "123",
    ),
    ("10012727", "Gastrointestinal disorders", "Diarrhea", "12345"),
    ("10001760", "Skin and subcutaneous tissue disorders", "Alopecia", "12"),
    ("10047900", "Investigations", "Weight loss", "123"),
    # Toripalimab / immune-related
    ("10021114", "Endocrine disorders", "Hypothyroidism", "12345"),
    ("10020850", "Endocrine disorders", "Hyperthyroidism", "12345"),
    ("10001367", "Endocrine disorders", "Adrenal insufficiency", "12345"),
    ("10035742", "Respiratory, thoracic and mediastinal disorders", "Pneumonitis", "12345"),
    ("10009887", "Gastrointestinal disorders", "Colitis", "12345"),
    ("10037868", "Skin and subcutaneous tissue disorders", "Rash maculo-papular", "123"),
    ("10037087", "Skin and subcutaneous tissue disorders", "Pruritus", "123"),
    (
        "10051792",
        "Injury, poisoning and procedural complications",
        "Infusion related reaction",
        "12345",
    ),
    # Liver and laboratory
    ("10003481", "Investigations", "Aspartate aminotransferase increased", "1234"),
    ("10001551", "Investigations", "Alanine aminotransferase increased", "1234"),
    ("10005364", "Investigations", "Blood bilirubin increased", "1234"),
    ("10035528", "Investigations", "Platelet count decreased", "1234"),
    ("10029366", "Investigations", "Neutrophil count decreased", "1234"),
    ("10002272", "Blood and lymphatic system disorders", "Anemia", "12345"),
    ("10020943", "Metabolism and nutrition disorders", "Hypoalbuminemia", "12345"),
    ("10019663", "Hepatobiliary disorders", "Hepatic failure", "345"),
    ("10003445", "Gastrointestinal disorders", "Ascites", "12345"),
    (
        "10019805",
        "Hepatobiliary disorders",
        "Hepatobiliary disorders - Other, specify",
        "12345",
    ),
    # General
    ("10016256", "General disorders and administration site conditions", "Fatigue", "123"),
    ("10002646", "Metabolism and nutrition disorders", "Anorexia", "12345"),
    ("10028813", "Gastrointestinal disorders", "Nausea", "123"),
    ("10000081", "Gastrointestinal disorders", "Abdominal pain", "123"),
    ("10016558", "General disorders and administration site conditions", "Fever", "12345"),
    ("10011914", "General disorders and administration site conditions", "Death NOS", "5"),
]


def load_starter_terms(*, user=None) -> int:
    """Load the starter set into an empty dictionary; returns how many terms were added.

    A dictionary that already has terms (e.g. the full CTCAE loaded) is left alone: 0.
    """
    with transaction.atomic():
        if CtcaeTerm.objects.exists():
            return 0
        terms = [
            CtcaeTerm(
                meddra_code=code,
                soc=soc,
                term=term,
                grades=grades,
                is_other_specify=term.endswith(OTHER_SPECIFY_SUFFIX),
            )
            for code, soc, term, grades in STARTER_TERMS
        ]
        for term in terms:
            term.full_clean()
        CtcaeTerm.objects.bulk_create_with_history(terms, user=user, reason=STARTER_REASON)
    return len(terms)
