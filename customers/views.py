from django.db.models import Count

from crm_site.api.history import HistoryMixin
from crm_site.api.viewsets import CRMModelViewSet

from .filters import CustomerFilter
from .models import Customer
from .serializers import CustomerSerializer


class CustomerViewSet(HistoryMixin, CRMModelViewSet):
    queryset = Customer.objects.all()
    serializer_class = CustomerSerializer
    filterset_class = CustomerFilter
    unique_constraint_fields = {"customer_email_ci_unique": ("email", "A customer with this email already exists.")}
    deleted_message = "Customer deleted."

    def perform_destroy(self, instance):
        counts = Customer.objects.filter(pk=instance.pk).aggregate(
            interactions=Count("interactions", distinct=True),
            opportunities=Count("opportunities", distinct=True),
        )
        instance.delete()
        return {"deleted": {"customers": 1, **counts}}
