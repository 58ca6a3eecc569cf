"""The eligibility panel on the subject page (included from subjects/subject_detail.html)."""

from django import template

from core.access import can_enter_data

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
        "can_edit": can_enter_data(user, subject),
    }
