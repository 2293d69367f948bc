"""The API's fast read paths, in one place: work done once per process instead of per request.

For the few reads every request makes (the bearer token lookup, the record of
a detail request) compiling the ORM query, and building a serializer's fields
from the model's metadata, cost several times as much as the database work.
This module does both once per process and hands back exactly what the ORM and
DRF would, each with a twin test proving it (tests/core/api/test_fast_paths.py):

- :class:`RowReader` (:func:`reader`): a model's row by primary key, or any
  join of its columns, turned into a model instance as the ORM turns it
  (``Model.from_db`` with the backend's and the fields' converters), so that
  signals, ``from_db`` overrides and deferred loading behave as usual.
- :class:`~core.prepared.PreparedValues`: ``values_list()`` of an ORM query,
  compiled once and run for any primary key (or other values).
- Detail readers, the hook a viewset declares as ``detail_reader`` (see
  ``core.api.viewsets``): :data:`MODEL_ROW` reads the model's row;
  :class:`AnnotatedRow` reads it with annotations from one compiled query.
- :class:`CachedReadFieldsMixin`: a serializer's read fields built once per class,
  and a representation plan: a plain attribute read directly, a foreign key's id
  read from its column, a date-time represented in a time zone looked up once per
  record rather than once per value.
"""

import copy
import datetime
from collections.abc import Mapping
from functools import cache

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist, ObjectDoesNotExist, ValidationError
from django.db import connections
from django.utils import timezone
from rest_framework.fields import ISO_8601, DateTimeField, Field, SkipField
from rest_framework.relations import PKOnlyObject, PrimaryKeyRelatedField, RelatedField
from rest_framework.serializers import BaseSerializer, ListSerializer
from rest_framework.settings import api_settings

from core import access
from core.prepared import Converters, PreparedInstances, PreparedValues


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


class RowReader:
    def __init__(self, model, using="default"):
        self.model = model
        self.using = using
        self.fields = list(model._meta.concrete_fields)
        self.attnames = [field.attname for field in self.fields]
        connection = connections[using]
        quote = connection.ops.quote_name
        self.table = quote(model._meta.db_table)
        self.columns = [f"{self.table}.{quote(field.column)}" for field in self.fields]
        converters = []
        for index, field in enumerate(self.fields):
            column = field.get_col(model._meta.db_table)
            functions = connection.ops.get_db_converters(column) + field.get_db_converters(connection)
            if functions:
                converters.append((index, functions, column))
        self.converters = Converters(converters, connection)
        self.by_pk_sql = (
            f"SELECT {', '.join(self.columns)} FROM {self.table} WHERE {self.table}.{quote(model._meta.pk.column)} = %s"
        )

    def __len__(self):
        return len(self.fields)

    def instance(self, row, connection=None):
        """A model instance from the columns of ``row`` (in ``self.columns`` order).

        ``connection`` is ``connections[self.using]``, for a caller that has it at hand.
        """
        if connection is None:
            connection = connections[self.using]
        values = self.converters.apply(row, connection)
        return self.model.from_db(self.using, self.attnames, values)

    def get(self, pk):
        """The instance with primary key ``pk``, or None."""
        connection = connections[self.using]
        with connection.cursor() as cursor:
            cursor.execute(self.by_pk_sql, [pk])
            row = cursor.fetchone()
        return None if row is None else self.instance(row, connection)


@cache
def reader(model, using="default"):
    return RowReader(model, using)


# Detail readers: how a viewset reads the one record of a detail request.
#
# ``read(model, pk, using)`` returns the instance with primary key ``pk``, or
# None: the model's unrestricted rows, for a user whose scope is everything.
# ``read(model, pk, using, rep=user)`` returns it only if the sales rep ``user``
# sees it (``core.access.scope``), compiled once for every rep: the scope of a
# stand-in rep, whose primary key each read replaces with the user's.


# The primary key a stand-in rep is compiled with (and never a user's).
STAND_IN_REP = PreparedValues.SENTINEL - 1


class ModelRow:
    """The model's own row, and nothing more."""

    per_viewer = False

    def read(self, model, pk, using="default", rep=None):
        if rep is None:
            return reader(model, using).get(pk)
        return _SCOPED_ROW.read(model, pk, using, rep=rep)


MODEL_ROW = ModelRow()


class AnnotatedRow:
    """The model's row with the annotations ``annotate(queryset)`` adds, named in ``names``, in one query.

    The query (``annotate(model.objects.filter(pk=...))``, scoped for a rep) is
    compiled once per model and database; the annotations become attributes of
    the instance, as the ORM sets them. Annotations that depend on who reads them
    (``per_viewer``: a company's figures are those of the people the reader sees)
    are ``annotate(queryset, viewer)``: ``viewer`` is None for a user who sees
    everything, and a rep's stand-in for a rep's read, so that they too are
    compiled once for every rep.
    """

    def __init__(self, annotate, names, *, per_viewer=False):
        self.annotate = annotate
        self.names = tuple(names)
        self.per_viewer = per_viewer
        self._prepared = cache(self._prepare)

    def annotated(self, queryset, viewer=None):
        """``queryset`` with the annotations, as ``viewer`` (None: a user who sees everything) sees them."""
        return self.annotate(queryset, viewer) if self.per_viewer else self.annotate(queryset)

    def _prepare(self, model, using, scoped):
        def build(pk, *rep_pk):
            queryset = model._default_manager.using(using).filter(pk=pk)
            if not scoped:
                return self.annotated(queryset)
            rep = access.stand_in(*rep_pk, access.REP)
            return access.scope(self.annotated(queryset, rep), rep)

        sentinels = (PreparedValues.SENTINEL, STAND_IN_REP) if scoped else (PreparedValues.SENTINEL,)
        return PreparedInstances(model, build, using, sentinels=sentinels, names=self.names)

    def read(self, model, pk, using="default", rep=None):
        prepared = self._prepared(model, using, rep is not None)
        return prepared.get(pk) if rep is None else prepared.get(pk, rep.pk)


# A rep's read of the model's own row: the row with no annotations, scoped.
_SCOPED_ROW = AnnotatedRow(lambda queryset: queryset, ())


# Reuse one set of bound fields, per serializer class, to represent instances.
#
# A ModelSerializer builds (and deep-copies) all its fields from the model's
# metadata for every instance it creates: on a detail request that costs more
# than the database read. Representing an instance needs no per-request state in
# the fields of a serializer whose fields do not depend on its context, so the
# readable fields are built once per class and shared, and walked through a plan
# made once (each field's name, attribute and representation). Validation (writes)
# still binds fields of its own to each serializer, copied from ones built once per
# class. Only for serializers whose fields are fixed.
# (A comment, not a docstring: the OpenAPI schema would show it as every serializer's description.)
class CachedReadFieldsMixin:
    _read_fields_cache = None
    _unbound_fields_cache = None
    _read_plan_cache = None

    def get_fields(self):
        # Writes bind fresh fields to each serializer, copied from the fields built once per
        # class (building them again from the model's metadata costs three times a deep copy,
        # and a deep copy several times the copy of each field's own attributes).
        cls = type(self)
        unbound = cls.__dict__.get("_unbound_fields_cache")
        if unbound is None:
            unbound = super().get_fields()
            cls._unbound_fields_cache = unbound
        return {name: copy_unbound_field(field) for name, field in unbound.items()}

    @classmethod
    def _cached_read_fields(cls):
        # Keyed by class so that subclasses get their own fields.
        cache = cls.__dict__.get("_read_fields_cache")
        if cache is None:
            prototype = cls()
            cache = [field for field in prototype.fields.values() if not field.write_only]
            cls._read_fields_cache = cache
        return cache

    @property
    def _readable_fields(self):
        return iter(self._cached_read_fields())

    @classmethod
    def _read_plan(cls):
        """(name, field, attribute or None, how to represent it, zoned) per readable field, made once.

        ``zoned`` marks a date-time field represented as DRF does it by default (ISO 8601 in
        the current time zone), which :func:`represent_datetime` does with the zone looked
        up once per record, or once per list (see :func:`_child_of_a_list`).
        """
        plan = cls.__dict__.get("_read_plan_cache")
        if plan is None:
            model = getattr(getattr(cls, "Meta", None), "model", None)
            entries = []
            for field in cls._cached_read_fields():
                column = foreign_key_column(field, model)
                if column is not None:
                    entries.append((field.field_name, field, column, _same, False))
                else:
                    zoned = is_default_datetime(field)
                    entries.append((field.field_name, field, plain_attribute(field), field.to_representation, zoned))
            plan = tuple(entries)
            cls._read_plan_cache = plan
        return plan

    def to_representation(self, instance):
        # DRF's Serializer.to_representation, with a field that reads one plain attribute read
        # by getattr here; anything else (a missing attribute, a callable, a related object
        # that does not exist, a field with its own get_attribute) goes through the field.
        plan = self._read_plan()
        if plan is None or isinstance(instance, Mapping):
            return super().to_representation(instance)
        ret = {}
        # Looked up once per list: a top-level list's rows are represented by its one child serializer.
        zone = self.__dict__.get("_representation_zone", NOT_LOOKED_UP)
        for name, field, attribute_name, represent, zoned in plan:
            if attribute_name is not None:
                try:
                    attribute = getattr(instance, attribute_name)
                except (AttributeError, ObjectDoesNotExist):
                    attribute_name = None
                else:
                    if callable(attribute):
                        attribute_name = None
            if attribute_name is None:
                try:
                    attribute = field.get_attribute(instance)
                except SkipField:
                    continue
                if isinstance(attribute, PKOnlyObject) and attribute.pk is None:
                    attribute = None
                represent = field.to_representation
            if attribute is None:
                ret[name] = None
            elif zoned:
                if zone is NOT_LOOKED_UP:
                    zone = representation_zone()
                    if _child_of_a_list(self):
                        self._representation_zone = zone
                ret[name] = represent_datetime(field, attribute, zone)
            else:
                ret[name] = represent(attribute)
        return ret


NOT_LOOKED_UP = object()


def _child_of_a_list(serializer):
    """Whether ``serializer`` is the child of a top-level list, made for one representation in one request.

    Such a child may keep the zone for the list's other rows. Any other serializer (on its own, or
    nested in another, which may be a field built once per class and shared between requests and
    threads) looks the zone up for each record.
    """
    parent = serializer.parent
    return isinstance(parent, ListSerializer) and parent.parent is None


def _same(value):
    return value


def plain_attribute(field):
    """The one attribute a bound field reads with DRF's own ``Field.get_attribute``, or None."""
    if type(field).get_attribute is not Field.get_attribute or len(field.source_attrs) != 1:
        return None
    return field.source_attrs[0]


def foreign_key_column(field, model):
    """The attribute holding the id that a ``PrimaryKeyRelatedField`` represents, or None.

    DRF reads a pk-only relation with ``serializable_value`` (a foreign key's
    ``attname``, the column's raw value) and represents the id as it is; reading that
    attribute directly gives the same, for a field that changes none of that.
    """
    if model is None or not isinstance(field, PrimaryKeyRelatedField) or len(field.source_attrs) != 1:
        return None
    kind = type(field)
    if (
        kind.get_attribute is not RelatedField.get_attribute
        or kind.to_representation is not PrimaryKeyRelatedField.to_representation
        or kind.use_pk_only_optimization is not PrimaryKeyRelatedField.use_pk_only_optimization
        or field.pk_field is not None
    ):
        return None
    try:
        model_field = model._meta.get_field(field.source_attrs[0])
    except FieldDoesNotExist:
        return None
    if not (model_field.many_to_one and model_field.concrete):
        return None
    return model_field.attname


def is_default_datetime(field):
    """Whether ``field`` is a DRF ``DateTimeField`` that represents values as DRF's default does."""
    kind = type(field)
    return (
        isinstance(field, DateTimeField)
        and kind.to_representation is DateTimeField.to_representation
        and kind.enforce_timezone is DateTimeField.enforce_timezone
        and kind.default_timezone is DateTimeField.default_timezone
        and plain_attribute(field) is not None
        and not hasattr(field, "timezone")
        and not hasattr(field, "format")
    )


def representation_zone():
    """The zone date-times are represented in, or None when DRF's ISO 8601 default is not in force."""
    if not settings.USE_TZ:
        return None
    output_format = api_settings.DATETIME_FORMAT
    if output_format is None or output_format.lower() != ISO_8601:
        return None
    return timezone.get_current_timezone()


def represent_datetime(field, value, zone):
    """``field.to_representation(value)`` of a default ``DateTimeField``, in ``zone`` (see representation_zone)."""
    if zone is None or type(value) is not datetime.datetime or value.utcoffset() is None:
        return field.to_representation(value)
    try:
        text = value.astimezone(zone).isoformat()
    except OverflowError:
        return field.to_representation(value)  # DRF's own error
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def copy_unbound_field(field):
    """A copy of an unbound field that is what ``copy.deepcopy`` (a field made again from its arguments) gives.

    A field built from its arguments holds nothing but its settings, so copying its
    attributes (and the lists, dicts and sets among them, which a serializer could
    change in place) is the same; a field holding fields (a nested serializer, a
    list's child, a many-relation) is deep-copied.
    """
    if isinstance(field, BaseSerializer) or hasattr(field, "child") or hasattr(field, "child_relation"):
        return copy.deepcopy(field)
    twin = object.__new__(type(field))
    state = twin.__dict__
    for key, value in field.__dict__.items():
        state[key] = value.copy() if type(value) in MUTABLE_CONTAINERS else value
    return twin


MUTABLE_CONTAINERS = (list, dict, set)
