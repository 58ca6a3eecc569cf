"""CDISC ODM 1.3.2 export: metadata, admin data and clinical data in one XML file, streamed.

Everything comes from the export registry, so a CRF added later is exported with no ODM code of
its own. A snapshot holds current values; an archival file holds every history row as a
transaction with its ``AuditRecord`` (README, "Sponsor exports"). Memory must stay flat:
subjects are merged form by form and written one at a time. OIDs: ``oids``.
"""

from .audited import audited_models
from .metadata import metadata_version
from .oids import EVENTS, NS, Event, event_of
from .scope import SIGNED, Scope, Signed, UnknownForm, clinical_forms, selected_forms, signed_forms
from .values import odm_value
from .writer import OdmExport, export_for, operator_export

__all__ = [
    "EVENTS",
    "NS",
    "SIGNED",
    "Event",
    "OdmExport",
    "Scope",
    "Signed",
    "UnknownForm",
    "audited_models",
    "clinical_forms",
    "event_of",
    "export_for",
    "metadata_version",
    "odm_value",
    "operator_export",
    "selected_forms",
    "signed_forms",
]
