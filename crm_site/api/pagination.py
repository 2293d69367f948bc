"""Page-number pagination in the envelope: ``data`` is the list, paging under ``meta``."""

from django.core.paginator import EmptyPage, Paginator
from rest_framework import exceptions
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param


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
    return value


class EnvelopePagination(BasePagination):
    page_size = 50
    max_page_size = 500
    page_query_param = "page"
    page_size_query_param = "page_size"

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        page_number = _positive_int(request, self.page_query_param, 1)
        self.page_size_used = min(
            _positive_int(request, self.page_size_query_param, self.page_size), self.max_page_size
        )
        self.paginator = Paginator(queryset, self.page_size_used)
        try:
            self.page = self.paginator.page(page_number)
        except EmptyPage:
            if page_number == 1:
                raise
            raise exceptions.NotFound(
                f"Page {page_number} does not exist; there are {self.paginator.num_pages} pages."
            ) from None
        return list(self.page)

    def _page_link(self, number):
        url = self.request.build_absolute_uri()
        if number == 1:
            return remove_query_param(url, self.page_query_param)
        return replace_query_param(url, self.page_query_param, number)

    def get_paginated_response(self, data):
        page = self.page
        return Response(
            {
                "success": True,
                "data": data,
                "meta": {
                    "count": self.paginator.count,
                    "page": page.number,
                    "page_size": self.page_size_used,
                    "next": self._page_link(page.next_page_number()) if page.has_next() else None,
                    "previous": self._page_link(page.previous_page_number()) if page.has_previous() else None,
                },
            }
        )

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.page_query_param,
                "in": "query",
                "required": False,
                "allowEmptyValue": True,
                "description": "Page number, from 1.",
                "schema": {"type": "integer", "minimum": 1},
            },
            {
                "name": self.page_size_query_param,
                "in": "query",
                "required": False,
                "allowEmptyValue": True,
                "description": f"Rows per page (default {self.page_size}; more than {self.max_page_size} "
                f"gives {self.max_page_size}).",
                "schema": {"type": "integer", "minimum": 1},
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
                        "count": {"type": "integer"},
                        "page": {"type": "integer"},
                        "page_size": {"type": "integer"},
                        "next": {"type": "string", "format": "uri", "nullable": True},
                        "previous": {"type": "string", "format": "uri", "nullable": True},
                    },
                },
            },
        }
