"""Every API resource, on one router under ``/api``."""

from django.urls import re_path
from rest_framework.routers import DefaultRouter

from companies.views import CompanyViewSet
from core.api.changesets import ChangesetViewSet
from core.api.customfields import CustomFieldViewSet
from core.api.events import EventViewSet
from core.api.tags import TagViewSet
from customers.views import CustomerViewSet
from duplicates.views import DuplicateCandidateViewSet
from interactions.views import ActivityReportView, InteractionViewSet
from notifications.views import NotificationViewSet
from opportunities.views import ForecastReportView, OpportunityViewSet, PipelineReportView
from tasks.views import FollowUpsReportView, TaskViewSet
from webhooks.views import WebhookEndpointViewSet


class OptionalSlashRouter(DefaultRouter):
    """Serve ``/api/customers`` and ``/api/customers/`` alike, without redirects."""

    include_root_view = False
    include_format_suffixes = False

    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("customers", CustomerViewSet, basename="customer")
router.register("companies", CompanyViewSet, basename="company")
router.register("interactions", InteractionViewSet, basename="interaction")
router.register("opportunities", OpportunityViewSet, basename="opportunity")
router.register("tasks", TaskViewSet, basename="task")
router.register("events", EventViewSet, basename="event")
router.register("custom-fields", CustomFieldViewSet, basename="custom-field")
router.register("webhooks", WebhookEndpointViewSet, basename="webhook")
router.register("notifications", NotificationViewSet, basename="notification")
router.register("tags", TagViewSet, basename="tag")
router.register("changesets", ChangesetViewSet, basename="changeset")
router.register("duplicates", DuplicateCandidateViewSet, basename="duplicate")

REPORTS = {
    "pipeline": PipelineReportView,
    "forecast": ForecastReportView,
    "activity": ActivityReportView,
    "follow-ups": FollowUpsReportView,
}

urlpatterns = router.urls + [
    re_path(rf"^reports/{name}/?$", view.as_view(), name=f"report-{name}") for name, view in REPORTS.items()
]

# The paths under /api that the service's index (GET /) lists.
INDEX = [*(prefix for prefix, _viewset, _basename in router.registry), *(f"reports/{name}" for name in REPORTS)]
