"""The owner path of each model is declared once, by its own app, and every scope follows it."""

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured

from core import access
from tests.factories import UserFactory

DECLARED = {
    # An event keeps the owner of its record at the time it was written.
    "core.event": "owner",
    "companies.company": "owner",
    "companies.historicalcompany": "owner",
    "customers.customer": "owner",
    "customers.historicalcustomer": "owner",
    "interactions.interaction": "customer__owner",
    "opportunities.opportunity": "customer__owner",
    "opportunities.stagechange": "opportunity__customer__owner",
    # A task is its customer's owner's; its assignee sees it too (below).
    "tasks.task": "customer__owner",
    # A user's own: the notifications API narrows to the recipient for every role.
    "notifications.notification": "recipient",
    # Mail kept by the gateway for the user whose address received it.
    "mailgateway.inboundemail": "user",
    # The column mappings a user saved for their files.
    "operations.columnmapping": "user",
    # A bulk change is its author's: a rep sees (and undoes) their own.
    "core.changeset": "user",
}
ALSO_SEEN_BY = {"tasks.task": ("assignee",), "companies.company": ("customers__owner",)}


def test_each_app_declares_the_owner_paths_of_its_models():
    declared = {
        model._meta.label_lower: access.owner_path(model) for model in apps.get_models() if access.has_owner_path(model)
    }

    assert declared == DECLARED


def test_further_paths_name_who_else_sees_a_row():
    further = {
        model._meta.label_lower: tuple(access.seen_by_paths(model)[1:])
        for model in apps.get_models()
        if access.has_owner_path(model) and access.seen_by_paths(model)[1:]
    }

    assert further == ALSO_SEEN_BY


@pytest.mark.parametrize("label", sorted(DECLARED))
def test_every_owner_path_leads_to_a_user(label):
    model = apps.get_model(label)
    for path in access.seen_by_paths(model):
        current = model
        for name in path.split("__"):
            current = current._meta.get_field(name).related_model

        assert current is get_user_model()


def test_a_model_without_an_owner_path_cannot_be_scoped_for_a_rep(db):
    rep = UserFactory(username="rep")
    rep.groups.add(Group.objects.get(name="Sales rep"))

    with pytest.raises(ImproperlyConfigured, match="register_owner_path"):
        access.scope(Group.objects.all(), rep)


def test_the_kernel_holds_no_second_copy_of_the_owner_paths():
    source = open(access.__file__, encoding="utf-8").read()

    assert not any(f'"{path}"' in source for path in set(DECLARED.values()) if "__" in path)
