"""Viewset behaviour for the API's hot paths, mixed into ``CRMModelViewSet``."""

from django.core.exceptions import ValidationError
from django.db.models.query import ModelIterable, QuerySet
from django.http import Http404

from .fastsql import reader


class ListOnlyFilteringMixin:
    """Apply the filter backends to collections only.

    Query parameters filter collections (lists, and list-level actions such as
    an export); on a single object (``/customers/7``) they mean nothing, as in
    the original API, and building the FilterSet and its form on every detail
    request costs as much as the read itself.
    """

    def filter_queryset(self, queryset):
        if getattr(self, "detail", False):
            return queryset
        return super().filter_queryset(queryset)


def url_pk(model, value):
    """The primary key that ``value`` (from a URL) names, or None when it can name no row.

    Out of a 64-bit column's range is no row too (and no driver overflow error).
    """
    try:
        pk = model._meta.pk.to_python(value)
    except ValidationError:
        return None
    if isinstance(pk, int) and not -(2**63) <= pk < 2**63:
        return None
    return pk


class PrimaryKeyReadMixin:
    """Fetch the object of a detail request with SQL built once per process.

    Used only when ``get_queryset()`` is the model's plain queryset (no filter,
    annotation, join or deferral); anything else goes the usual way.
    """

    def get_object(self):
        queryset = self.get_queryset()
        if self.lookup_field != "pk" or not _is_plain(queryset):
            return super().get_object()
        pk = url_pk(queryset.model, self.kwargs[self.lookup_url_kwarg or self.lookup_field])
        if pk is None:
            raise Http404
        instance = self.read_by_pk(queryset, pk)
        if instance is None:
            raise Http404
        self.check_object_permissions(self.request, instance)
        return instance

    def read_by_pk(self, queryset, pk):
        """The model instance with primary key ``pk`` (``queryset`` is plain), or None."""
        return reader(queryset.model, queryset.db).get(pk)


def _is_plain(queryset):
    query = queryset.query
    return (
        not query.where
        and not query.annotations
        and not query.select_related
        and not query.extra
        and query.deferred_loading == (frozenset(), True)
        and not queryset._prefetch_related_lookups
        # Model instances as QuerySet makes them (a subclass may add methods, such as
        # Customer's with_summary(), but not change how rows become objects).
        and queryset._iterable_class is ModelIterable
        and type(queryset)._fetch_all is QuerySet._fetch_all
    )
