"""Queries compiled once (core.prepared) return what the ORM returns, and the reads built on them agree
with the plain ORM queries they stand for."""

import gc
import threading
import weakref
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connections

from companies.models import Company
from companies.services import _first_named
from core import customfields
from core.models import CustomField
from core.prepared import PreparedValues
from customers.models import Customer, email_in_use
from opportunities.models import Opportunity
from tests.factories import CompanyFactory, CustomerFactory, OpportunityFactory

NAME = "\x00name"


@pytest.fixture
def opportunities(db):
    return [
        OpportunityFactory(title="Alpha", value=Decimal("1234.50"), expected_close_date=None),
        OpportunityFactory(title="alpha", value=Decimal("0.01")),
        OpportunityFactory(title="Beta", value=Decimal("99999999.99")),
    ]


def orm_rows(queryset):
    return [tuple(row) for row in queryset]


@pytest.mark.parametrize("title", ["Alpha", "alpha", "Beta", "Gamma", "ALPHA", "", "α"])
def test_one_value_gives_the_rows_values_list_gives(opportunities, title):
    def build(value):
        return (
            Opportunity.objects.filter(title=value)
            .order_by("pk")
            .values_list("pk", "value", "expected_close_date", "created_at", "customer")
        )

    prepared = PreparedValues(build, sentinels=(NAME,))

    assert prepared.all(title) == orm_rows(build(title))
    assert prepared.get(title) == (orm_rows(build(title)) or [None])[0]


def test_several_values_and_none(opportunities):
    def build(low, high):
        return (
            Opportunity.objects.filter(value__gte=low, pk__lt=high)
            .order_by("-value", "pk")
            .values_list("title", "value")
        )

    prepared = PreparedValues(build, sentinels=(Decimal("-7.77"), PreparedValues.SENTINEL))
    for low, high in [(Decimal("0"), 10**6), (Decimal("1000"), opportunities[2].pk), (Decimal("1e9"), 10**6)]:
        assert prepared.all(low, high) == orm_rows(build(low, high))

    everything = PreparedValues(
        lambda: Opportunity.objects.order_by("pk").values_list("pk", "updated_at"), sentinels=()
    )
    assert everything.all() == orm_rows(Opportunity.objects.order_by("pk").values_list("pk", "updated_at"))
    assert isinstance(everything.all()[0][1], datetime)
    assert everything.all()[0][1].tzinfo == UTC


def test_a_value_that_does_not_reach_the_parameters_as_given_is_refused(db):
    with pytest.raises(ValueError, match="every value"):
        PreparedValues(lambda value: Customer.objects.filter(name=value.upper()).values_list("pk"), sentinels=(NAME,))
    with pytest.raises(ValueError, match="every value"):
        PreparedValues(lambda pk: Customer.objects.filter(pk=1).values_list("pk"))
    prepared = PreparedValues(lambda pk: Customer.objects.filter(pk=pk).values_list("pk"))
    with pytest.raises(TypeError):
        prepared.get(1, 2)


def definitions_by_orm():
    grouped = {}
    for definition in CustomField.objects.order_by("order", "id"):
        grouped.setdefault(definition.model, []).append(definition)
    return grouped


def assert_same_definitions(got, expected):
    assert list(got) == list(expected)
    for resource, definitions in expected.items():
        assert len(got[resource]) == len(definitions)
        for mine, theirs in zip(got[resource], definitions, strict=True):
            assert type(mine) is type(theirs)
            for field in CustomField._meta.concrete_fields:
                assert getattr(mine, field.attname) == getattr(theirs, field.attname), field.name
            assert (mine._state.adding, mine._state.db) == (False, theirs._state.db)


def test_custom_field_definitions_are_read_as_the_orm_reads_them(db):
    assert customfields._load() == {} == definitions_by_orm()

    CustomField.objects.create(model="customers", key="tier", label="Tier", field_type="choice", choices=["a", "b"])
    CustomField.objects.create(model="opportunities", key="score", label="Score", field_type="number", order=2)
    CustomField.objects.create(model="customers", key="since", label="Since", field_type="date", order=1)
    CustomField.objects.create(
        model="customers",
        key="regions",
        label="地区",
        label_zh="地区",
        field_type="multi_choice",
        choices=["华东", "x,y"],
    )
    assert_same_definitions(customfields._load(), definitions_by_orm())

    # Changed in any way, by the ORM or behind its back: read anew, every time.
    CustomField.objects.filter(key="tier").update(order=9, choices=["c"], required=True)
    CustomField.objects.filter(key="since").delete()
    assert_same_definitions(customfields._load(), definitions_by_orm())
    assert [d.key for d in customfields._load()["customers"]] == ["regions", "tier"]
    assert customfields._load()["customers"][1].choices == ["c"]


@pytest.mark.parametrize(
    "email",
    ["ann@example.com", "ANN@Example.COM", "ann@example.co", "bob@example.com", "Ünï@example.com", "ünï@EXAMPLE.com"],
)
def test_email_in_use_answers_what_with_email_answers(db, email):
    ann = CustomerFactory(email="Ann@example.com")
    CustomerFactory(email="ÜNÏ@example.com")
    CustomerFactory(email=None)

    for other_than in [None, ann.pk, 10**9]:
        clash = Customer.objects.with_email(email)
        if other_than is not None:
            clash = clash.exclude(pk=other_than)
        assert email_in_use(email, other_than=other_than) is clash.exists(), other_than


@pytest.mark.parametrize("name", ["Acme", "  ACME ", "ａｃｍｅ", "Acme Ltd", "acme  ltd", "Nobody", "科技 公司"])
def test_the_company_named_among_all_is_the_one_named_finds(db, name):
    CompanyFactory(name="Acme Ltd")
    CompanyFactory(name="ACME")
    CompanyFactory(name="acme")  # a later one with the same key: the oldest is the one
    CompanyFactory(name="科技  公司", tags=["vip"])

    expected = Company.objects.named(name).first()
    got = _first_named(name, None)
    if expected is None:
        assert got is None
        return
    assert type(got) is Company
    for field in Company._meta.concrete_fields:
        assert getattr(got, field.attname) == getattr(expected, field.attname), field.name
    assert (got._state.adding, got._state.db) == (False, expected._state.db)
    assert got.tags == expected.tags


def test_a_value_of_another_type_than_its_sentinel_is_refused(db):
    prepared = PreparedValues(lambda pk: Customer.objects.filter(pk=pk).values_list("pk"))
    with pytest.raises(TypeError, match="int expected, str given"):
        prepared.get("5")


def test_a_query_compiled_in_a_thread_neither_keeps_its_connection_nor_needs_it(db):
    """Compiled in a thread that then ends; run in this one with this thread's connection."""
    CustomerFactory(name="Ann")
    compiled, seen = [], []

    def compile_there():
        compiled.append(
            PreparedValues(
                lambda pk: Customer.objects.filter(pk__gte=pk).values_list("name", "created_at"),
                sentinels=(PreparedValues.SENTINEL,),
            )
        )
        seen.append(weakref.ref(connections["default"]))
        connections["default"].close()

    thread = threading.Thread(target=compile_there)
    thread.start()
    thread.join()
    gc.collect()

    assert seen[0]() is None, "the compiled query keeps the thread's connection"
    rows = compiled[0].all(0)
    assert rows == [tuple(row) for row in Customer.objects.values_list("name", "created_at")]
    assert rows[0][1].tzinfo == UTC
