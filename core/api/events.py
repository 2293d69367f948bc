"""``GET /api/events``: the event log as a feed, in commit order, for clients that catch up by polling.

``?after=<cursor>`` continues after the last event a client has seen (the cursor
is the event's position in commit order, as ``meta.next_cursor`` gives it; see
``core.events.relay``), ``?type=`` narrows to some event types. Scoped like the
records: a rep sees the events of the records in their book, as it was when each
event was written (deleted records included).
"""

from django_filters import rest_framework as filters
from django_filters.fields import MultipleChoiceField
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, serializers, viewsets

from core import events
from core.access import scope
from core.models import Event

from .pagination import MAX_NUMBER, EnvelopePagination, _positive_int


class EventSerializer(serializers.ModelSerializer):
    actor_id = serializers.IntegerField(read_only=True, allow_null=True, help_text="who made the change")
    owner_id = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="the record's owner when the event was written"
    )
    changes = serializers.JSONField(read_only=True, help_text='{field: {"old": ..., "new": ...}}')
    data = serializers.JSONField(
        read_only=True, allow_null=True, help_text="the record as the API returned it after the change; null if deleted"
    )

    class Meta:
        model = Event
        fields = [
            "id",
            "type",
            "model",
            "object_id",
            "changes",
            "data",
            "actor_id",
            "owner_id",
            "request_id",
            "created_at",
        ]
        read_only_fields = fields


class _TypesField(MultipleChoiceField):
    def clean(self, value):
        # An empty ?type= means no filter, as an empty value does for every other filter.
        return super().clean([item for item in value or [] if item != ""])


class TypesFilter(filters.MultipleChoiceFilter):
    field_class = _TypesField


class EventFilter(filters.FilterSet):
    type = TypesFilter(
        choices=lambda: [(name, name) for name in events.event_types()],
        help_text="Only these event types (repeat the parameter for several).",
    )

    class Meta:
        model = Event
        fields = ["type"]


class EventFeedPagination(EnvelopePagination):
    """In commit order, continuing after a position: a feed never skips or repeats an event it already served.

    Only committed events have a position, and a newly committed one always gets a
    higher one than every event served before (``core.events.relay``), however long
    its transaction ran. Events from before positions existed kept their ids as
    positions, so a cursor handed out then still works.

    ``meta.next_cursor`` is where to continue from, also on the last page (poll
    it again later); ``meta.next`` is a link only while more events are waiting.
    """

    cursor_query_param = "after"

    def paginate_queryset(self, queryset, request, view=None):
        # Place what has committed since the last relay, in its own transaction (a relay already
        # running is left to it); then read: the page sees every position given so far.
        events.relay(queryset.db)
        self.request = request
        self.page_size_used = min(
            _positive_int(request, self.page_size_query_param, self.page_size), self.max_page_size
        )
        after = request.query_params.get(self.cursor_query_param) or None
        self.cursor = after
        self.page_number = None
        if after is not None:
            try:
                after_id = int(after)
            except ValueError:
                after_id = -1
            if not 0 <= after_id < 2**63:
                raise exceptions.ValidationError(
                    {self.cursor_query_param: ["A cursor is a position in the feed, as meta.next_cursor gives it."]}
                )
            queryset = queryset.filter(position__gt=after_id)
        else:
            queryset = queryset.placed()
        rows = list(queryset.order_by("position")[: self.page_size_used + 1])
        self.has_next = len(rows) > self.page_size_used
        rows = rows[: self.page_size_used]
        if not self.has_next:
            self.count, self.count_capped = len(rows), False
        else:
            self._count(queryset)
        self.next_cursor = str(rows[-1].position) if rows else after
        return rows

    def get_paginated_response(self, data):
        response = super().get_paginated_response(data)
        meta = response.data["meta"]
        meta["next"] = self._link(**{self.cursor_query_param: self.next_cursor}) if self.has_next else None
        return response

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.cursor_query_param,
                "in": "query",
                "required": False,
                "allowEmptyValue": True,
                "description": "Events after this cursor (the `meta.next_cursor` of the previous page), "
                "in commit order; from the oldest kept when absent.",
                "schema": {"type": "string", "pattern": "^[0-9]{1,19}$"},
            },
            {
                "name": self.page_size_query_param,
                "in": "query",
                "required": False,
                "allowEmptyValue": True,
                "description": f"Events per page (default {self.page_size}; more than {self.max_page_size} "
                f"gives {self.max_page_size}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_NUMBER},
            },
        ]


def _type_parameter():
    # The apps have registered their records (AppConfig.ready) before the URLs, and so this module, load.
    return OpenApiParameter(
        "type",
        {"type": "array", "items": {"type": "string", "enum": events.event_types()}},
        OpenApiParameter.QUERY,
        description="Only these event types (repeat the parameter for several).",
        style="form",
        explode=True,
    )


@extend_schema_view(list=extend_schema(parameters=[_type_parameter()]))
class EventViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The change log of customers, interactions and opportunities, in commit order."""

    queryset = Event.objects.all()
    serializer_class = EventSerializer
    filterset_class = EventFilter
    pagination_class = EventFeedPagination

    def get_queryset(self):
        return scope(super().get_queryset(), self.request.user)
