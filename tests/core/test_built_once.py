"""Summary figures built once per process annotate exactly as figures built for each query."""

import pytest
from django.db.models import Value

from companies import parts as company_parts
from companies.models import Company
from customers import parts as customer_parts
from customers.models import Customer
from tests.factories import CompanyFactory, CustomerFactory, InteractionFactory, OpportunityFactory


def fresh_customers(queryset, *also):
    names = [name for name, figure in customer_parts.FIGURES.items() if figure.in_summary or name in also]
    return queryset.annotate(**{name: customer_parts.FIGURES[name].build() for name in names})


def fresh_companies(queryset):
    return queryset.annotate(**{name: build() for name, build in company_parts.FIGURES.items()})


@pytest.mark.django_db
def test_the_figures_built_once_give_the_queries_and_rows_of_fresh_ones(rep):
    company = CompanyFactory()
    customers = [CustomerFactory(company=company.name, owner=rep), CustomerFactory(), CustomerFactory(owner=rep)]
    for index, customer in enumerate(customers):
        InteractionFactory.create_batch(index + 1, customer=customer)
        OpportunityFactory(customer=customer, value=100 * (index + 1))
    shapes = [
        lambda rows: rows,
        lambda rows: rows.filter(owner=rep).order_by("-id"),
        lambda rows: rows.filter(pk=customers[1].pk),
        lambda rows: rows.exclude(name="nobody")[:2],
    ]
    # Several rounds: a shared expression that a query changed would show in a later one.
    for _round in range(3):
        for shape in shapes:
            for also in ((), ("open_opportunity_count",)):
                cached = shape(Customer.objects.with_summary(*also))
                fresh = shape(fresh_customers(Customer.objects.all(), *also))
                assert str(cached.query) == str(fresh.query)
                assert list(cached.values()) == list(fresh.values())
            cached = Company.objects.with_summary().filter(pk=company.pk)
            fresh = fresh_companies(Company.objects.all()).filter(pk=company.pk)
            assert str(cached.query) == str(fresh.query)
            assert list(cached.values()) == list(fresh.values())
    assert Customer.objects.with_summary().get(pk=customers[2].pk).interaction_count == 3


@pytest.mark.django_db
def test_a_figure_registered_later_is_annotated():
    CustomerFactory()
    Customer.objects.with_summary().first()
    customer_parts.add_figure("later_figure", lambda: Value(5))
    try:
        assert Customer.objects.with_summary().first().later_figure == 5
    finally:
        del customer_parts.FIGURES["later_figure"]
    assert not hasattr(Customer.objects.with_summary().first(), "later_figure")
