from crm_site.api.history import HistoryMixin
from crm_site.api.viewsets import CRMModelViewSet

from .filters import OpportunityFilter
from .models import Opportunity
from .serializers import OpportunitySerializer


class OpportunityViewSet(HistoryMixin, CRMModelViewSet):
    queryset = Opportunity.objects.all()
    serializer_class = OpportunitySerializer
    filterset_class = OpportunityFilter
    deleted_message = "Opportunity deleted."
