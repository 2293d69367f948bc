"""Twin tests of the resource serializers' fields built once per class (``core.api.fastsql.CachedReadFieldsMixin``).

Each resource serializer the router serves with fields built once per class is
compared with its plain twin (DRF's own ``get_fields``, ``_readable_fields`` and
``to_representation``): the same representation, key by key and in order, and the
same validation outcome (validated data or errors, with their codes) over many inputs.
"""

import datetime
import itertools
import zoneinfo
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.test import RequestFactory
from django.utils import timezone
from rest_framework import serializers
from rest_framework.request import Request

from core.api.fastsql import CachedReadFieldsMixin, copy_unbound_field
from crm_site.api_router import router
from customers.models import Customer
from tests.factories import (
    CompanyFactory,
    CustomerFactory,
    InteractionFactory,
    ManagerFactory,
    OpportunityFactory,
    TaskFactory,
    UserFactory,
)


def plain_twin(serializer_class):
    """The same serializer with DRF's own per-instance fields and representation."""
    return type(
        f"Plain{serializer_class.__name__}",
        (serializer_class,),
        {
            "get_fields": serializers.ModelSerializer.get_fields,
            "_readable_fields": serializers.Serializer._readable_fields,
            "_read_plan": classmethod(lambda cls: None),
        },
    )


def _with_subclasses(cls):
    found = [cls]
    for sub in cls.__subclasses__():
        if not sub.__module__.startswith("tests."):
            found.extend(_with_subclasses(sub))
    return found


def resource_serializers():
    """Every serializer with fields built once per class that the router's resources use, and their subclasses."""
    classes = []
    for _prefix, viewset, _basename in router.registry:
        serializer_class = getattr(viewset, "serializer_class", None)
        if serializer_class is not None and issubclass(serializer_class, CachedReadFieldsMixin):
            for cls in _with_subclasses(serializer_class):
                if cls not in classes:
                    classes.append(cls)
    return classes


SERIALIZERS = resource_serializers()


def test_every_resource_with_cached_fields_is_compared():
    names = {cls.__name__ for cls in SERIALIZERS}
    assert {
        "CustomerSerializer",
        "CreatedCustomerSerializer",
        "CompanySerializer",
        "CreatedCompanySerializer",
        "InteractionSerializer",
        "OpportunitySerializer",
        "TaskSerializer",
    } <= names


def _records(model, rep):
    customer = CustomerFactory(owner=rep, company="星辰科技", email=None)
    InteractionFactory(customer=customer)
    InteractionFactory(customer=customer, notes=None)
    opportunity = OpportunityFactory(customer=customer, value=Decimal("120.50"), expected_close_date="2026-03-01")
    TaskFactory(customer=customer, opportunity=opportunity, due_at=timezone.now(), notes="")
    TaskFactory(customer=customer, due_at=timezone.now(), notes="回电")
    CustomerFactory(name="Ø", phone=None, email=None, company=None)
    return list(model._default_manager.order_by("pk"))


def _viewset_queryset(model):
    for _prefix, viewset, _basename in router.registry:
        if getattr(viewset, "queryset", None) is not None and viewset.queryset.model is model:
            return viewset.queryset
    return model._default_manager.all()


def _request(user):
    request = Request(RequestFactory().post("/api/"))
    request.user = user
    return request


def _rep():
    rep = UserFactory(username="rep")
    rep.groups.add(Group.objects.get(name="Sales rep"))
    return rep


@pytest.mark.parametrize("serializer_class", SERIALIZERS, ids=lambda cls: cls.__name__)
def test_representation_is_drfs(db, serializer_class):
    model = serializer_class.Meta.model
    plain = plain_twin(serializer_class)
    rep = _rep()
    records = _records(model, rep)
    # As the views read them (with summary annotations), and bare (annotated fields left out).
    annotated = list(_viewset_queryset(model).filter(pk__in=[record.pk for record in records]).order_by("pk"))
    assert annotated
    for instance in [*records, *annotated]:
        context = {"request": _request(rep)}
        ours = serializer_class(instance, context=context).data
        assert list(ours.items()) == list(plain(instance, context=context).data.items())
    assert serializer_class(annotated, many=True).data == plain(annotated, many=True).data
    # A record with an attribute that is not the model's, and one whose summary figures are null.
    instance = annotated[0]
    instance.duplicates = [{"id": 1, "score": 0.5, "reasons": ["same_email"]}]
    for name in ("interaction_count", "open_pipeline_value", "last_interaction_at"):
        if hasattr(instance, name):
            setattr(instance, name, None)
    assert list(serializer_class(instance).data.items()) == list(plain(instance).data.items())


NAIVE = datetime.datetime(2026, 3, 29, 2, 30)  # in the hour Europe/Berlin skips that night
INSTANTS = [
    datetime.datetime(2026, 7, 1, 12, 0, 5, 123456, tzinfo=datetime.UTC),
    datetime.datetime(2026, 7, 1, 20, 0, tzinfo=zoneinfo.ZoneInfo("Asia/Shanghai")),
    datetime.datetime(1, 1, 1, 0, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=1))),
    datetime.datetime(9999, 12, 31, 23, 0, tzinfo=datetime.UTC),
    NAIVE,
    "2026-07-01T12:00:00Z",
    "",
    None,
]


def _datetime_and_relation_fields(serializer_class):
    fields = serializer_class().fields
    return (
        [
            name
            for name, field in fields.items()
            if isinstance(field, serializers.DateTimeField) and not field.write_only
        ],
        [
            name
            for name, field in fields.items()
            if isinstance(field, serializers.RelatedField) and not field.write_only
        ],
    )


def _outcome_of_representation(serializer):
    # DRF's own errors included: a value out of range raises, in either.
    try:
        return list(serializer.data.items())
    except (serializers.ValidationError, OverflowError) as error:
        return type(error).__name__, str(error)


@pytest.mark.parametrize("serializer_class", SERIALIZERS, ids=lambda cls: cls.__name__)
def test_dates_and_relations_are_represented_as_drf_does(db, serializer_class, settings):
    """Date-times in every zone and format, and related ids present or not, give DRF's own answer."""
    model = serializer_class.Meta.model
    plain = plain_twin(serializer_class)
    rep = _rep()
    instance = _viewset_queryset(model).filter(pk__in=[record.pk for record in _records(model, rep)]).first()
    dates, relations = _datetime_and_relation_fields(serializer_class)
    assert dates, "every resource has a date-time to compare"
    formats = [{}, {"DATETIME_FORMAT": "%d/%m/%Y %H:%M"}, {"DATETIME_FORMAT": None}]
    rest_framework_settings = settings.REST_FRAMEWORK
    for zone, rest_framework, use_tz in itertools.product(
        ["UTC", "Asia/Shanghai", "Europe/Berlin", "America/St_Johns"], formats, [True, False]
    ):
        settings.REST_FRAMEWORK = {**rest_framework_settings, **rest_framework}
        settings.USE_TZ = use_tz
        with timezone.override(zoneinfo.ZoneInfo(zone)):
            for value in INSTANTS:
                for name in dates:
                    setattr(instance, name, value)
                assert _outcome_of_representation(serializer_class(instance)) == _outcome_of_representation(
                    plain(instance)
                ), (zone, rest_framework, use_tz, value)
    settings.USE_TZ = True
    for name in relations:
        field = model._meta.get_field(serializer_class().fields[name].source)
        if field.many_to_one and field.null:
            setattr(instance, field.attname, None)
    assert list(serializer_class(instance).data.items()) == list(plain(instance).data.items())


@pytest.mark.parametrize("serializer_class", SERIALIZERS, ids=lambda cls: cls.__name__)
def test_a_list_is_represented_in_the_zone_in_force(db, serializer_class, settings):
    """A list's rows share one child serializer, which looks the zone up once: each list, in its own zone."""
    model = serializer_class.Meta.model
    plain = plain_twin(serializer_class)
    rep = _rep()
    records = _records(model, rep)
    rows = list(_viewset_queryset(model).filter(pk__in=[record.pk for record in records]).order_by("pk"))
    lists = {}
    for zone in ["Asia/Shanghai", "UTC", "America/St_Johns"]:
        with timezone.override(zoneinfo.ZoneInfo(zone)):
            lists[zone] = serializer_class(rows, many=True).data
            assert lists[zone] == plain(rows, many=True).data, zone
    dates, _relations = _datetime_and_relation_fields(serializer_class)
    pairs = zip(lists["Asia/Shanghai"], lists["UTC"], strict=True)
    assert any(row[name] != utc_row[name] for row, utc_row in pairs for name in dates if row[name] is not None)
    # A serializer that is not a top-level list's child (on its own, or nested in another, which may be
    # shared between requests) keeps no zone: the same one, used in two zones, answers in each.
    nested = serializers.ListSerializer(child=serializer_class())
    nested.bind(field_name="rows", parent=serializers.Serializer())
    for single in (serializer_class(), nested.child):
        answers = {}
        for zone in ["Asia/Shanghai", "UTC"]:
            with timezone.override(zoneinfo.ZoneInfo(zone)):
                answers[zone] = single.to_representation(rows[0])
                assert answers[zone] == plain().to_representation(rows[0]), zone
        assert answers["Asia/Shanghai"] != answers["UTC"]


VALUES = [
    None,
    "",
    "  Acme  ",
    "x" * 260,
    "\x00",
    0,
    7,
    -3,
    2.5,
    10**20,
    True,
    [],
    ["vip", "VIP"],
    ["a,b"],
    {},
    {"region": "r7"},
    {"nope": 1},
    "2026-01-02",
    "2026-01-02T03:04:05+08:00",
    "not a date",
    "13800138000",
    "a@example.com",
    "not an email",
    "999999",
    Decimal("12.345"),
]


def _field_values(field, pks):
    values = list(VALUES)
    if isinstance(field, serializers.ChoiceField):
        values.extend(field.choices)
    if isinstance(field, serializers.RelatedField):
        values.extend(pks)
    return values


def _outcome(serializer):
    if serializer.is_valid():
        return "valid", dict(serializer.validated_data)
    return "invalid", repr(serializer.errors)


@pytest.mark.parametrize("serializer_class", SERIALIZERS, ids=lambda cls: cls.__name__)
def test_validation_is_drfs(db, serializer_class):
    model = serializer_class.Meta.model
    plain = plain_twin(serializer_class)
    rep = _rep()
    manager = ManagerFactory()
    records = _records(model, rep)
    other = CustomerFactory(owner=ManagerFactory())
    pks = [record.pk for record in records] + [other.pk, CompanyFactory().pk, rep.pk, manager.pk, 10**9]
    record = records[0]
    context = {"request": _request(manager)}
    # The fields as DRF binds them, setting for setting (the first line names the class).
    assert repr(serializer_class(context=context)).split("\n")[1:] == repr(plain(context=context)).split("\n")[1:]
    base = {
        key: value
        for key, value in plain(record, context=context).data.items()
        if key in plain(context=context).fields and not plain(context=context).fields[key].read_only
    }
    for unique in ("email", "external_id", "name"):
        base.pop(unique, None)
    base["name"] = "新客户"
    writable = [name for name, field in plain(context=context).fields.items() if not field.read_only]
    assert writable
    cases = [({}, False), (base, False), ({}, True), ([], False), ("text", False)]
    for name in writable:
        field = plain(context=context).fields[name]
        for value in _field_values(field, pks):
            cases.append(({**base, name: value}, False))
            cases.append(({name: value}, True))
    for data, partial in cases:
        for user in (rep, manager):
            context = {"request": _request(user)}
            instance = record if partial else None
            ours = serializer_class(instance, data=data, partial=partial, context=context)
            theirs = plain(instance, data=data, partial=partial, context=context)
            assert _outcome(ours) == _outcome(theirs), (data, partial, user)


class _Child(serializers.Serializer):
    a = serializers.IntegerField()


@pytest.mark.parametrize(
    "field",
    [
        serializers.CharField(max_length=5, validators=[lambda value: None]),
        serializers.ChoiceField(choices=Customer.Status.choices),
        serializers.ListField(child=serializers.CharField()),
        serializers.DictField(child=serializers.IntegerField()),
        _Child(many=True),
        serializers.PrimaryKeyRelatedField(queryset=Customer.objects.all(), many=True),
    ],
    ids=["char", "choice", "list", "dict", "nested", "many"],
)
def test_a_copied_field_shares_nothing_a_serializer_could_change(db, field):
    twin = copy_unbound_field(field)
    assert type(twin) is type(field)
    assert repr(twin) == repr(field)
    for key, value in vars(field).items():
        if isinstance(value, (list, dict, set, serializers.Field)) and not (value == [] or value == {}):
            assert vars(twin)[key] is not value, key
    for name in ("child", "child_relation"):
        if hasattr(field, name):
            assert getattr(twin, name).parent is twin
    twin.bind("copied", serializers.Serializer())
    assert field.field_name is None and field.parent is None


def test_fields_are_built_once_per_class(db):
    serializer_class = SERIALIZERS[0]
    first, second = serializer_class().fields, serializer_class().fields
    for name in first:
        assert first[name] is not second[name]
        assert first[name].parent is not second[name].parent
    assert serializer_class.__dict__["_unbound_fields_cache"] is not None
    assert list(itertools.islice(serializer_class._read_plan(), 1))
