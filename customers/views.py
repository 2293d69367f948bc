from crm_site.api.viewsets import CRMModelViewSet

from .filters import CustomerFilter
from .models import Customer
from .serializers import CustomerSerializer
from .services import delete_customer


class CustomerViewSet(CRMModelViewSet):
    queryset = Customer.objects.all()
    serializer_class = CustomerSerializer
    filterset_class = CustomerFilter
    unique_constraint_fields = {"customer_email_ci_unique": ("email", "A customer with this email already exists.")}
    deleted_message = "Customer deleted."

    def perform_destroy(self, instance):
        return {"deleted": delete_customer(instance)}
