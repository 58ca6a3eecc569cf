from rest_framework import serializers

from subjects.models import Subject


class SubjectSerializer(serializers.ModelSerializer):
    """A subject for the sponsor: no direct identifiers (no initials, no date of birth)."""

    site = serializers.CharField(source="site.code")
    age = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = Subject
        fields = [
            "subject_identifier",
            "site",
            "screening_date",
            "age",
            "sex",
            "consent_date",
            "consent_version",
            "status",
            "status_date",
            "updated",
        ]
