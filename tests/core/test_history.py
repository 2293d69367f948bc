"""``Model.history`` (``core/history.py``): the manager class made once gives what simple_history's own gives."""

import pytest
from django.apps import apps
from simple_history.manager import HistoryDescriptor

from customers.models import Customer
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def tracked_models():
    return [model for model in apps.get_models() if hasattr(model._meta, "simple_history_manager_attribute")]


def test_every_tracked_model_makes_its_history_manager_class_once():
    assert tracked_models()
    for model in tracked_models():
        name = model._meta.simple_history_manager_attribute
        assert getattr(model, name).__class__ is getattr(model, name).__class__, model


def test_history_reads_what_simple_historys_own_descriptor_reads():
    customer = CustomerFactory(name="First")
    customer.name = "Second"
    customer.save()
    CustomerFactory(name="Someone else")
    cached = Customer.__dict__["history"]
    plain = HistoryDescriptor(cached.model, cached.manager_class, cached.queryset_class)

    for ours, theirs in (
        (Customer.history, plain.__get__(None, Customer)),
        (customer.history, plain.__get__(customer, Customer)),
    ):
        assert type(ours).__mro__[1:] == type(theirs).__mro__[1:]
        assert ours.instance == theirs.instance
        assert list(ours.values_list("history_id", "name", "history_type")) == list(
            theirs.values_list("history_id", "name", "history_type")
        )
    assert [entry.name for entry in customer.history.order_by("history_id")] == ["First", "Second"]
