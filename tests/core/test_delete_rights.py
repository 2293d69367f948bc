"""What a role may delete is what its group's permissions grant (customers/migrations/0003_staff_groups.py),
in the API as in the admin: changing a group's permissions changes the answer, with no second list to edit."""

import pytest
from django.contrib.auth.models import Group, Permission
from knox.models import get_token_model
from rest_framework.test import APIClient

from customers.models import Customer
from interactions.models import Interaction
from tests.factories import CustomerFactory, InteractionFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def rep():
    user = UserFactory(username="rep")
    user.groups.add(Group.objects.get(name="Sales rep"))
    return user


def api_for(user):
    client = APIClient()
    _, token = get_token_model().objects.create(user)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def grant(group, codename, granted):
    permission = Permission.objects.get(codename=codename)
    group = Group.objects.get(name=group)
    (group.permissions.add if granted else group.permissions.remove)(permission)


def test_a_rep_may_not_delete_a_customer_as_the_group_grants_no_such_permission(rep):
    customer = CustomerFactory(owner=rep)
    response = api_for(rep).delete(f"/api/customers/{customer.pk}")
    assert response.status_code == 403
    assert response.json()["success"] is False
    assert Customer.objects.filter(pk=customer.pk).exists()


def test_granting_the_group_delete_customer_lets_a_rep_delete_their_customer(rep):
    grant("Sales rep", "delete_customer", True)
    customer = CustomerFactory(owner=rep)
    InteractionFactory(customer=customer)
    response = api_for(rep).delete(f"/api/customers/{customer.pk}")
    assert response.status_code == 200, response.content
    assert response.json()["data"]["deleted"]["interactions"] == 1
    assert not Customer.objects.filter(pk=customer.pk).exists()


def test_taking_delete_interaction_from_the_group_stops_a_rep_deleting_interactions(rep):
    grant("Sales rep", "delete_interaction", False)
    interaction = InteractionFactory(customer=CustomerFactory(owner=rep))
    response = api_for(rep).delete(f"/api/interactions/{interaction.pk}")
    assert response.status_code == 403
    assert Interaction.objects.filter(pk=interaction.pk).exists()


def test_the_admin_and_the_api_agree_on_what_a_rep_may_delete(rep, client):
    rep.is_staff = True
    rep.save()
    client.force_login(rep)
    customer = CustomerFactory(owner=rep)
    interaction = InteractionFactory(customer=customer)
    assert client.get(f"/admin/customers/customer/{customer.pk}/delete/").status_code == 403
    assert client.get(f"/admin/interactions/interaction/{interaction.pk}/delete/").status_code == 200
    assert api_for(rep).delete(f"/api/customers/{customer.pk}").status_code == 403
    assert api_for(rep).delete(f"/api/interactions/{interaction.pk}").status_code == 200
