"""The staff groups created by the data migration, as the admin enforces them."""

import pytest
from django.contrib.auth.models import Group

from tests.factories import CustomerFactory, InteractionFactory, OpportunityFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def login(client):
    def log_in(group_name):
        user = UserFactory(is_staff=True)
        user.groups.add(Group.objects.get(name=group_name))
        client.force_login(user)
        client.crm_user = user
        return client

    return log_in


def test_the_three_groups_exist():
    assert set(Group.objects.values_list("name", flat=True)) >= {"Sales rep", "Sales manager", "Read-only"}


@pytest.mark.parametrize(
    ("group", "customer_delete", "interaction_delete", "opportunity_delete"),
    [("Sales rep", 403, 200, 200), ("Sales manager", 200, 200, 200), ("Read-only", 403, 403, 403)],
)
def test_delete_permissions(login, group, customer_delete, interaction_delete, opportunity_delete):
    client = login(group)
    # In the rep's own book: others' records are out of reach whatever the group allows.
    customer = CustomerFactory(owner=client.crm_user)
    interaction = InteractionFactory(customer=customer)
    opportunity = OpportunityFactory(customer=customer)
    assert client.get(f"/admin/customers/customer/{customer.pk}/delete/").status_code == customer_delete
    assert client.get(f"/admin/interactions/interaction/{interaction.pk}/delete/").status_code == interaction_delete
    assert client.get(f"/admin/opportunities/opportunity/{opportunity.pk}/delete/").status_code == opportunity_delete


def test_rep_works_with_customers_but_cannot_bulk_delete_them(login):
    client = login("Sales rep")
    customer = CustomerFactory(owner=client.crm_user)
    response = client.get("/admin/customers/customer/")
    assert response.status_code == 200
    actions = [name for name, _ in response.context["action_form"].fields["action"].choices]
    assert "delete_selected" not in actions and "set_status_active" in actions
    assert client.get("/admin/customers/customer/add/").status_code == 200
    assert client.get("/admin/customers/customer/import/").status_code == 200
    change = client.post(
        f"/admin/customers/customer/{customer.pk}/change/",
        {
            "name": "Rep renamed",
            "status": "active",
            "company": "",
            "email": "",
            "phone": "",
            "interactions-TOTAL_FORMS": "0",
            "interactions-INITIAL_FORMS": "0",
            "opportunities-TOTAL_FORMS": "0",
            "opportunities-INITIAL_FORMS": "0",
            "tasks-TOTAL_FORMS": "0",
            "tasks-INITIAL_FORMS": "0",
        },
    )
    assert change.status_code == 302
    customer.refresh_from_db()
    assert customer.name == "Rep renamed"


def test_read_only_staff_can_look_and_export_but_not_change_or_import(login):
    client = login("Read-only")
    customer = CustomerFactory(name="Look only")
    listing = client.get("/admin/customers/customer/")
    assert listing.status_code == 200 and "Look only" in listing.content.decode()
    actions = [name for name, _ in listing.context["action_form"].fields["action"].choices]
    assert not any(name.startswith("set_status_") for name in actions)
    assert client.get("/admin/customers/customer/import/").status_code == 403
    assert client.get("/admin/customers/customer/export/").status_code == 200
    page = client.get(f"/admin/customers/customer/{customer.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert client.post(f"/admin/customers/customer/{customer.pk}/change/", {"name": "x"}).status_code == 403
    assert client.get("/admin/").context["pipeline"]["open"]["count"] == 0
