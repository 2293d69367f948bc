"""URLs used only by tests: a view that fails the way a bug would."""

from django.urls import path
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny

from crm_site.urls import handler500, urlpatterns  # noqa: F401


@api_view(["GET"])
@permission_classes([AllowAny])
def broken(request):
    raise RuntimeError("a bug")


urlpatterns = [path("api/broken", broken), *urlpatterns]
