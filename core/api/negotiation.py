"""Content negotiation that answers the common case without parsing anything."""

from rest_framework import exceptions
from rest_framework.negotiation import DefaultContentNegotiation

# What API clients send (or nothing): the first renderer, JSON, is the answer.
_JSON_ACCEPTS = frozenset({"", "*/*", "application/json"})


class JSONFirstNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, short-cut for ``Accept`` headers that can only mean JSON.

    Parsing and ranking the ``Accept`` header costs more than rendering a
    detail response; for the headers in ``_JSON_ACCEPTS`` the outcome is known.
    Anything else (a browser's ``text/html``, ``?format=``, ``indent=``) goes
    through DRF's full negotiation.
    """

    def select_renderer(self, request, renderers, format_suffix=None):
        format_param = self.settings.URL_FORMAT_OVERRIDE
        if (
            not format_suffix
            and renderers
            and renderers[0].media_type == "application/json"
            and request.META.get("HTTP_ACCEPT", "").strip() in _JSON_ACCEPTS
            # Without a query string there is no ``?format=``: no need to parse one.
            and (not request.META.get("QUERY_STRING") or format_param not in request.query_params)
        ):
            return renderers[0], renderers[0].media_type
        requested = request.query_params.get(format_param) if format_param and not format_suffix else None
        if requested and not any(renderer.format == requested for renderer in renderers):
            # DRF answers 404 here, as for an unknown ``.<format>`` suffix: a URL that exists
            # with a bad query parameter is a bad request, answered as the other bad parameters.
            known = ", ".join(dict.fromkeys(renderer.format for renderer in renderers))
            raise exceptions.ValidationError(
                {format_param: [f'Unknown format "{requested}": this URL answers {known}.']}, code="invalid"
            )
        return super().select_renderer(request, renderers, format_suffix)
