"""The eligibility panel on the subject page (included from subjects/subject_detail.html)."""

from django import template

from accounts.roles import DATA_ENTRY_ROLES
from edc.access import member_site_ids

from .. import services

register = template.Library()


@register.inclusion_tag("eligibility/_panel.html", takes_context=True)
def eligibility_panel(context, subject):
    assessment = services.get_assessment(subject)
    user = context.get("user")
    return {
        "subject": subject,
        "assessment": assessment,
        "evaluation": services.evaluate_eligibility(assessment) if assessment else None,
        "signature": services.active_signature(assessment) if assessment else None,
        "can_edit": subject.site_id in member_site_ids(user, *DATA_ENTRY_ROLES),
    }
