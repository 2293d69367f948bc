"""``/api/duplicates``: the pairs of records that are probably one, and "not a duplicate" decisions.

A rep sees the pairs whose two records they see. Merging is ``POST /api/customers/merge``
(``/api/companies/merge``); this list names the pairs to look at.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from . import services
from .filters import DuplicateCandidateFilter
from .models import DuplicateCandidate
from .serializers import DuplicateCandidateSerializer


class DuplicateCandidateViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Possible duplicates, best first (``?kind=customer&status=open``)."""

    queryset = DuplicateCandidate.objects.all()
    serializer_class = DuplicateCandidateSerializer
    filterset_class = DuplicateCandidateFilter
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self):
        return super().get_queryset().visible_to(self.request.user)

    @extend_schema(request=None, responses=DuplicateCandidateSerializer)
    @action(detail=True, methods=["post"], filter_backends=[])
    def dismiss(self, request, pk=None):
        """Mark the pair "not a duplicate": it is not offered again, whatever later rebuilds find."""
        candidate = self.get_object()
        try:
            candidate = services.dismiss(candidate, user=request.user)
        except services.NotAllowed as exc:
            raise exceptions.PermissionDenied(str(exc)) from exc
        except services.AlreadyMerged as exc:
            raise exceptions.ValidationError({"status": [str(exc)]}) from exc
        except DuplicateCandidate.DoesNotExist as exc:
            raise exceptions.NotFound() from exc
        return Response(self.get_serializer(candidate).data)
