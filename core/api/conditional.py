"""ETags on detail responses and If-Match / If-None-Match preconditions.

The ETag is a digest of the record's JSON representation, so it changes with
any field a client can see, and a client that sends it back in ``If-Match``
updates or deletes only the version it read. Every update and delete, with
If-Match or without, reads and writes its row in one transaction with the row
locked (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's IMMEDIATE
transactions already serialise writers).
"""

import hashlib
import json

from django.db import connection, transaction
from django.utils.http import parse_etags
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from .mixins import url_pk


class PreconditionFailed(exceptions.APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_code = "precondition_failed"
    default_detail = "The record has changed since it was read: If-Match does not match its current ETag."


def compute_etag(data):
    payload = json.dumps(data, cls=JSONEncoder, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return f'"{hashlib.sha256(payload.encode()).hexdigest()[:40]}"'


def _strip_weak(etag):
    return etag[2:] if etag.startswith("W/") else etag


def if_match_passes(header, etag):
    """Strong comparison, as RFC 9110 requires for If-Match."""
    candidates = parse_etags(header)
    return "*" in candidates or etag in candidates


def if_none_match_matches(header, etag):
    """Weak comparison, as RFC 9110 requires for If-None-Match."""
    candidates = parse_etags(header)
    return "*" in candidates or etag in {_strip_weak(candidate) for candidate in candidates}


class ConditionalRequestMixin:
    """For model viewsets: ETag on detail responses, 412 on a stale If-Match, 304 on If-None-Match."""

    # Figures derived from other records (a customer's interaction count, say): they
    # change without the record changing, so they must not make an If-Match stale.
    etag_ignored_fields = frozenset()

    def _etag(self, data):
        return compute_etag({key: value for key, value in data.items() if key not in self.etag_ignored_fields})

    def _with_etag(self, response):
        if isinstance(response.data, dict) and 200 <= response.status_code < 300:
            response["ETag"] = self._etag(response.data)
        return response

    def get_object(self):
        if self.request.method not in ("PUT", "PATCH", "DELETE"):
            return super().get_object()
        if connection.features.has_select_for_update and connection.in_atomic_block:
            # (OPTIONS simulates a PUT outside any transaction to list the allowed actions.)
            # Every write locks its row before reading it, If-Match or not: otherwise a
            # delete committed between the read and the save would make Django's save()
            # find no row to update and insert it again, without its children.
            self._lock_row()
        instance = super().get_object()
        if_match = self.request.headers.get("If-Match")
        if if_match is not None and not if_match_passes(if_match, self._etag(self.get_serializer(instance).data)):
            raise PreconditionFailed()
        return instance

    def _lock_row(self):
        """``SELECT ... FOR UPDATE`` of the row the URL names, apart from the view's queryset (which may join)."""
        model = self.get_queryset().model
        pk = url_pk(model, self.kwargs[self.lookup_url_kwarg or self.lookup_field])
        if pk is not None:  # otherwise get_object() answers 404
            list(model._base_manager.select_for_update().filter(pk=pk).values_list("pk", flat=True))

    def retrieve(self, request, *args, **kwargs):
        instance = self.get_object()
        data = self.get_serializer(instance).data
        etag = self._etag(data)
        if_none_match = request.headers.get("If-None-Match")
        if if_none_match is not None and if_none_match_matches(if_none_match, etag):
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})
        return Response(data, headers={"ETag": etag})

    def create(self, request, *args, **kwargs):
        return self._with_etag(super().create(request, *args, **kwargs))

    def update(self, request, *args, **kwargs):
        with transaction.atomic():
            response = super().update(request, *args, **kwargs)
        return self._with_etag(response)
