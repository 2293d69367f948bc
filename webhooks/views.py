"""``/api/webhooks``: endpoints, their delivery logs, replays and test events. Managers only."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, status
from rest_framework.decorators import action
from rest_framework.response import Response

from core.api.permissions import IsManager
from core.api.viewsets import CRMModelViewSet
from core.rowlocks import lock_keys

from . import delivery as service
from .filters import DeliveryFilter
from .models import Delivery, Endpoint
from .serializers import DeliverySerializer, EndpointSerializer, EndpointWithSecretSerializer, ReplaySerializer


class WebhookEndpointViewSet(CRMModelViewSet):
    """Webhook endpoints: where the CRM POSTs its events, signed (docs/webhooks.md)."""

    # The conventions of every resource (CRMModelViewSet): writes in one transaction,
    # Idempotency-Key, ETag/If-Match, PUT partial; managers only. The secret is in the
    # answer to the create (and to a replay of that same request) and to a rotation,
    # nowhere else, and is no part of the ETag.

    # Newest first, the default ordering that cursor paging follows on every list.
    queryset = Endpoint.objects.order_by("-created_at", "-id")
    serializer_class = EndpointSerializer
    permission_classes = [IsManager]
    filter_backends = []
    deleted_message = "Webhook endpoint deleted, with its delivery log."
    etag_ignored_fields = frozenset({"secret"})
    # Endpoints are configuration, written one at a time: no batch route.
    batch = None

    def get_serializer_class(self):
        return EndpointWithSecretSerializer if self.action == "create" else EndpointSerializer

    @extend_schema(request=None, responses=EndpointWithSecretSerializer)
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        """A new secret, shown once; the old one keeps signing beside it for a while."""
        # Locked before it is read, as a change's (``_find``): one deleted meanwhile answers 404.
        endpoint = self._find(self._url_pk(), writing=True, if_match=None)
        secret = service.rotate_secret(endpoint=endpoint)
        return Response({**EndpointSerializer(endpoint).data, "secret": secret})

    def _held_endpoint(self):
        """The URL's endpoint, for a write of its deliveries: held first ``FOR KEY SHARE`` (``rowlocks.lock_keys``),
        as a delivery's foreign key check holds it, then read. A delete under way is waited for, then the endpoint is
        read as gone (404), its deliveries with it, rather than a delivery written for no endpoint (a conflict at
        COMMIT) or one replayed that is no longer there (a 500); a delete that comes after waits for the write."""
        pk = self._url_pk()
        if pk is not None:
            lock_keys(Endpoint.objects.filter(pk=pk))
        return self.get_object()

    @extend_schema(request=None, responses={202: DeliverySerializer})
    @action(detail=True, methods=["post"], url_path="test")
    def test(self, request, pk=None):
        """Send a ``webhook.test`` event to the endpoint (after its pending deliveries)."""
        endpoint = self._held_endpoint()
        delivery = service.send_test_event(endpoint=endpoint, user=request.user)
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        parameters=[OpenApiParameter("status", str, enum=list(Delivery.Status.values))],
        responses=DeliverySerializer(many=True),
    )
    @action(detail=True, methods=["get"], url_path="deliveries")
    def deliveries(self, request, pk=None):
        """The endpoint's delivery log, newest first."""
        endpoint = self.get_object()
        filterset = DeliveryFilter(request.query_params, queryset=endpoint.deliveries.order_by("-created_at", "-id"))
        if not filterset.is_valid():
            raise exceptions.ValidationError(filterset.errors)
        page = self.paginate_queryset(filterset.qs)
        return self.get_paginated_response(DeliverySerializer(page, many=True).data)

    @extend_schema(request=None, responses={202: DeliverySerializer})
    @action(detail=True, methods=["post"], url_path=r"deliveries/(?P<delivery_id>[0-9]{1,18})/replay")
    def replay_one(self, request, pk=None, delivery_id=None):
        """Send one delivery again (same message id and body)."""
        endpoint = self._held_endpoint()
        found = get_object_or_404(endpoint.deliveries.all(), pk=delivery_id)
        if found.status == Delivery.Status.PENDING:
            raise exceptions.ValidationError({"delivery_id": ["This delivery is still pending."]})
        service.replay(deliveries=endpoint.deliveries.filter(pk=found.pk))
        found.refresh_from_db()
        return Response(DeliverySerializer(found).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        request=ReplaySerializer,
        responses={202: {"type": "object", "properties": {"replayed": {"type": "integer"}}}},
    )
    @action(detail=True, methods=["post"], url_path="replay")
    def replay_failed(self, request, pk=None):
        """Send again every failed delivery of the endpoint created since ``since``."""
        endpoint = self._held_endpoint()
        serializer = ReplaySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        failed = endpoint.deliveries.filter(
            status=Delivery.Status.FAILED, created_at__gte=serializer.validated_data["since"]
        )
        return Response({"replayed": service.replay(deliveries=failed)}, status=status.HTTP_202_ACCEPTED)
