from crm_site.api.history import HistoryMixin
from crm_site.api.viewsets import CRMModelViewSet

from .filters import InteractionFilter
from .models import Interaction
from .serializers import InteractionSerializer


class InteractionViewSet(HistoryMixin, CRMModelViewSet):
    queryset = Interaction.objects.all()
    serializer_class = InteractionSerializer
    filterset_class = InteractionFilter
    deleted_message = "Interaction deleted."
