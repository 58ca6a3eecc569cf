"""CDISC ODM 1.3.2 export: metadata, admin data and clinical data in one XML file, streamed.

Everything comes from the export registry (``exports.records.export_forms()``): a CRF added later
is exported with no ODM code of its own. A *snapshot* holds the current values; an *archival*
file (``FileType="Transactional" Archival="Yes"``) holds every history row of every exported
model as one transaction with its ``AuditRecord``, in time order per subject.

* OIDs: study ``settings.EDC_STUDY_ID``; events ``SE.<NAME>``; forms ``F.<code>``; item groups
  ``IG.<code>[.<CHILD>]``; items ``I.<code>[.<CHILD>].<ITEM>``; code lists ``CL.``; units
  ``MU.``; sites ``LOC.<code>``; users ``USR.<username>`` (``USR.SYSTEM``: no user recorded);
  signatures ``SD.<code>.<KIND>``; ``MDV.`` + a hash of the metadata.
* Events (``oids.EVENTS``): SCREENING, RANDOMIZATION, and COMMON for any form not named there.
  Child groups are repeating item groups beside the form's own group (ODM groups do not nest).
* Archival: an insert carries every stored item, an update only the items that changed (an
  emptied one ``IsNull="Yes"``), a deletion is a ``Remove`` with no items. Function items
  (derived now, not audited) are in the snapshot only; e-signatures are ``Signature`` elements.
* Direct identifiers' values are left out unless the export may show them; their ``ItemDef``s
  stay. Memory stays flat: subjects are merged form by form and written one at a time.
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
