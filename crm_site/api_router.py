"""Every API resource, on one router under ``/api``."""

from rest_framework.routers import DefaultRouter

from customers.views import CustomerViewSet
from interactions.views import InteractionViewSet
from opportunities.views import OpportunityViewSet


class OptionalSlashRouter(DefaultRouter):
    """Serve ``/api/customers`` and ``/api/customers/`` alike, without redirects."""

    include_root_view = False
    include_format_suffixes = False

    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("customers", CustomerViewSet, basename="customer")
router.register("interactions", InteractionViewSet, basename="interaction")
router.register("opportunities", OpportunityViewSet, basename="opportunity")

urlpatterns = router.urls
