from rest_framework import viewsets

from edc.access import scope_to_user
from subjects.models import Subject

from .filters import SubjectFilter
from .permissions import CanReadExports
from .serializers import SubjectSerializer


class ScopedReadOnlyViewSet(viewsets.ReadOnlyModelViewSet):
    """Base of every export endpoint: read-only, role-checked, narrowed to the user's sites."""

    permission_classes = [CanReadExports]

    def get_queryset(self):
        return scope_to_user(super().get_queryset(), self.request.user)


class SubjectViewSet(ScopedReadOnlyViewSet):
    queryset = Subject.objects.select_related("site")
    serializer_class = SubjectSerializer
    filterset_class = SubjectFilter
    lookup_field = "subject_identifier"
