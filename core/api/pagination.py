"""Pagination in the envelope: ``data`` is the list, paging under ``meta``.

Two ways through a list, on every list endpoint:

- ``?page=N`` (the original API's way, kept for existing clients): an OFFSET, so
  deep pages get slower as the table grows.
- ``?cursor=...`` (keyset): the opaque ``meta.next_cursor`` of the previous
  page; a page costs the same however deep it is, and rows inserted meanwhile
  never shift a row into a page twice. It follows the default ordering (newest
  first: ``-created_at, -id``); with another ``?ordering=`` only pages are
  available and ``next_cursor`` is null.

``meta.count`` is exact up to :attr:`EnvelopePagination.count_cap` rows; above
that it is the cap and ``meta.count_capped`` is true, so that no request counts
a million rows.
"""

import base64
import binascii
from datetime import UTC, datetime

from django.db.models import Q
from django.utils.translation import gettext, ngettext
from rest_framework import exceptions
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from core.paging import COUNT_CAP, capped_count

from .responses import Envelope

KEYSET_ORDERING = ("-created_at", "-id")
# Larger page numbers would overflow an OFFSET long before they could exist.
MAX_NUMBER = 10**9


def _positive_int(request, name, default):
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise exceptions.ValidationError({name: ["A positive integer is required."]})
    if value > MAX_NUMBER:
        raise exceptions.ValidationError({name: [f"Ensure this value is less than or equal to {MAX_NUMBER}."]})
    return value


def encode_cursor(row):
    """The cursor that continues after ``row`` in the default ordering."""
    raw = f"{row.created_at.isoformat()}|{row.pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(value):
    """(created_at, id) from a cursor; a ValidationError for anything else."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        timestamp, pk = raw.split("|")
        created_at = datetime.fromisoformat(timestamp)
        pk = int(pk)
        if created_at.tzinfo is None or not 0 < pk < 2**63:
            raise ValueError
        # A moment that UTC cannot hold (year 0 or 10000 once shifted) is no position either.
        created_at = created_at.astimezone(UTC)
    except (ValueError, OverflowError, UnicodeDecodeError, binascii.Error):
        raise exceptions.ValidationError({"cursor": ["Invalid cursor."]}) from None
    return created_at, pk


def _effective_ordering(queryset):
    query = queryset.query
    if query.order_by:
        return tuple(query.order_by)
    if query.default_ordering:
        return tuple(queryset.model._meta.ordering)
    return ()


class EnvelopePagination(BasePagination):
    page_size = 50
    max_page_size = 500
    count_cap = COUNT_CAP
    page_query_param = "page"
    page_size_query_param = "page_size"
    cursor_query_param = "cursor"

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        self.page_size_used = min(
            _positive_int(request, self.page_size_query_param, self.page_size), self.max_page_size
        )
        ordering = _effective_ordering(queryset)
        self.keyset = ordering in (KEYSET_ORDERING, KEYSET_ORDERING[:1])
        if self.keyset:
            queryset = queryset.order_by(*KEYSET_ORDERING)
        cursor = request.query_params.get(self.cursor_query_param)
        self.cursor = cursor or None
        if self.cursor is not None:
            if not self.keyset:
                raise exceptions.ValidationError(
                    {
                        self.cursor_query_param: [
                            "Cursor paging follows the default ordering (newest first); "
                            "drop ?ordering= or page with ?page=."
                        ]
                    }
                )
            if request.query_params.get(self.page_query_param):
                raise exceptions.ValidationError({self.cursor_query_param: ["Use either ?cursor= or ?page=."]})
            created_at, pk = decode_cursor(cursor)
            # created_at <= t bounds an index range scan; the OR only sorts out ties.
            page_rows = queryset.filter(
                Q(created_at__lt=created_at) | Q(created_at=created_at, pk__lt=pk), created_at__lte=created_at
            )
            self.page_number = None
            offset = 0
        else:
            self.page_number = _positive_int(request, self.page_query_param, 1)
            page_rows = queryset
            offset = (self.page_number - 1) * self.page_size_used
        # One row more than the page tells whether there is a next page.
        try:
            rows = list(page_rows[offset : offset + self.page_size_used + 1])
        except OverflowError:
            # A cursor whose time, in UTC, falls outside what dates can hold.
            raise exceptions.ValidationError({self.cursor_query_param: ["Invalid cursor."]}) from None
        self.has_next = len(rows) > self.page_size_used
        rows = rows[: self.page_size_used]
        if self.page_number == 1 and not self.has_next:
            # The whole result is on this page: its length is the count.
            self.count, self.count_capped = len(rows), False
        else:
            self._count(queryset)
        if not rows and self.page_number and self.page_number > 1:
            raise exceptions.NotFound(self._missing_page_message())
        self.next_cursor = encode_cursor(rows[-1]) if self.keyset and self.has_next else None
        return rows

    def _missing_page_message(self):
        if self.count_capped:
            return gettext("Page %(page)s does not exist.") % {"page": self.page_number}
        pages = max(1, -(-self.count // self.page_size_used))
        return ngettext(
            "Page %(page)s does not exist; there is %(pages)s page.",
            "Page %(page)s does not exist; there are %(pages)s pages.",
            pages,
        ) % {"page": self.page_number, "pages": pages}

    def _count(self, queryset):
        self.count, self.count_capped = capped_count(queryset, self.count_cap)

    def _link(self, **params):
        url = self.request.build_absolute_uri()
        for name, value in params.items():
            url = remove_query_param(url, name) if value is None else replace_query_param(url, name, value)
        return url

    def get_paginated_response(self, data):
        meta = {"count": self.count, "count_capped": self.count_capped}
        if self.page_number is None:
            meta.update(
                page_size=self.page_size_used,
                cursor=self.cursor,
                next_cursor=self.next_cursor,
                next=self._link(cursor=self.next_cursor) if self.next_cursor else None,
                previous=None,
            )
        else:
            number = self.page_number
            meta.update(
                page=number,
                page_size=self.page_size_used,
                next=self._link(page=number + 1) if self.has_next else None,
                previous=self._link(page=None if number == 2 else number - 1) if number > 1 else None,
                next_cursor=self.next_cursor,
            )
        return Response(Envelope(success=True, data=data, meta=meta))

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.page_query_param,
                "in": "query",
                "required": False,
                "allowEmptyValue": True,
                "description": "Page number, from 1.",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_NUMBER},
            },
            {
                "name": self.cursor_query_param,
                "in": "query",
                "required": False,
                "allowEmptyValue": True,
                "description": "Keyset paging: the `meta.next_cursor` of the previous page (default ordering only; "
                "not with `page`).",
                "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]+$"},
            },
            {
                "name": self.page_size_query_param,
                "in": "query",
                "required": False,
                "allowEmptyValue": True,
                "description": f"Rows per page (default {self.page_size}; more than {self.max_page_size} "
                f"gives {self.max_page_size}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_NUMBER},
            },
        ]

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["success", "data", "meta"],
            "properties": {
                "success": {"type": "boolean", "enum": [True]},
                "data": schema,
                "meta": {
                    "type": "object",
                    "properties": {
                        "count": {"type": "integer", "description": "exact up to 10,000; see count_capped"},
                        "count_capped": {"type": "boolean"},
                        "page": {"type": "integer", "description": "absent when paging by cursor"},
                        "cursor": {"type": "string", "nullable": True, "description": "only when paging by cursor"},
                        "next_cursor": {"type": "string", "nullable": True},
                        "page_size": {"type": "integer"},
                        "next": {"type": "string", "format": "uri", "nullable": True},
                        "previous": {"type": "string", "format": "uri", "nullable": True},
                    },
                },
            },
        }
