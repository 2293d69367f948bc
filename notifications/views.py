"""``/api/notifications``: the signed-in user's own notifications, newest first, and marking them read.

Every user with a role has their own notifications, and sees only those: a
manager does not see a rep's. Marking one's own notifications read is allowed to
read-only users too (it changes no record of the CRM).
"""

from django.db import transaction
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core import access
from core.api.fastsql import url_pk
from core.rowlocks import lock_rows

from .filters import NotificationFilter
from .models import Notification
from .serializers import NotificationSerializer, ReadAllResultSerializer


class HasAnyRole(permissions.BasePermission):
    """Signed in with a role; reading and marking one's own notifications is open to every role."""

    message = "Your account has no role in the CRM; ask a manager to give you one."

    def has_permission(self, request, view):
        return access.role_of(request.user) is not None


class NotificationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The signed-in user's notifications (``?unread=true`` for the unread ones)."""

    queryset = Notification.objects.all()
    serializer_class = NotificationSerializer
    filterset_class = NotificationFilter
    permission_classes = [HasAnyRole]
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self):
        return super().get_queryset().for_user(self.request.user)

    @extend_schema(request=None, responses=NotificationSerializer)
    @action(detail=True, methods=["post"])
    def read(self, request, pk=None):
        """Mark the notification read (once: reading it again keeps the first time)."""
        with transaction.atomic():
            # Locked before it is read: a delete under way is waited for, then the notification is read as gone
            # (404) rather than saved into no row; a mark under way too, whose time is then kept.
            found = url_pk(Notification, pk)
            if found is not None:
                lock_rows(self.get_queryset().filter(pk=found))
            notification = self.get_object()
            if notification.read_at is None:
                notification.read_at = timezone.now()
                notification.save(update_fields=["read_at"])
        return Response(self.get_serializer(notification).data)

    @extend_schema(request=None, responses=ReadAllResultSerializer)
    @action(detail=False, methods=["post"], url_path="read-all")
    def read_all(self, request):
        """Mark every unread notification of the user read."""
        return Response({"marked": self.get_queryset().mark_read()})
