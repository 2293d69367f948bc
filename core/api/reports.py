"""The base of every report endpoint: figures computed over the records the user may see.

A report is a ``GET`` whose query string is validated by a serializer (a bad
value is a 400) and whose payload is computed in the database. The base view
does the request's part; a report only says what to compute, from the querysets
:meth:`ScopedReportView.scoped` gives it, which are already narrowed to the
user's book (``core.access.scope``), as every list is.
"""

from django.utils import timezone
from rest_framework.response import Response
from rest_framework.views import APIView

from core.access import scope
from core.models import UserPreferences

from .query import validated_query
from .report_schemas import report_schema


class ScopedReportView(APIView):
    """Subclasses set ``query_serializer_class`` and ``payload_schema`` and implement ``report(query)``."""

    # Validates the query string; its validated instance is what report() receives.
    query_serializer_class = None
    # The OpenAPI description of the payload (see report_schemas.py).
    payload_schema = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.query_serializer_class is not None:
            report_schema(cls.query_serializer_class, cls.payload_schema)(cls)

    def scoped(self, model):
        """All rows of ``model`` that the requesting user may see."""
        return scope(model._default_manager.all(), self.request.user)

    def report(self, query):
        raise NotImplementedError

    # (No docstring: the OpenAPI description of each report is its class's docstring.)
    def get(self, request):
        # Days (a date given, today, a week or a month) are the user's, in their time zone, as the admin's are;
        # the payload's times stay in UTC (the database gives them so, and they are rendered after).
        with timezone.override(UserPreferences.for_user(request.user).zone):
            payload = self.report(validated_query(request, self.query_serializer_class))
        return Response(payload)
