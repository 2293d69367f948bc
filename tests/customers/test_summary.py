"""Summary figures on customer detail and list: annotated, no queries per row."""

import datetime
from decimal import Decimal

import pytest
from django.db.models import Value
from django.db.models.signals import post_save
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from customers import parts
from customers.models import Customer
from opportunities.models import Opportunity
from tests.factories import CustomerFactory, InteractionFactory, OpportunityFactory

BASE_FIELDS = ["id", "name", "company", "email", "phone", "status", "created_at", "updated_at"]


def populate(customer, interactions=3):
    for days in range(interactions):
        InteractionFactory(customer=customer, occurred_at=timezone.now() - datetime.timedelta(days=days + 1))
    OpportunityFactory(customer=customer, stage=Opportunity.Stage.LEAD, value=Decimal("100.50"))
    OpportunityFactory(customer=customer, stage=Opportunity.Stage.NEGOTIATION, value=Decimal("200"))
    OpportunityFactory(customer=customer, stage=Opportunity.Stage.CLOSED, value=Decimal("5000"))
    OpportunityFactory(customer=customer, stage=Opportunity.Stage.LOST, value=Decimal("7000"))


def expected_summary(customer):
    interactions = list(customer.interactions.all())
    open_values = [o.value for o in customer.opportunities.all() if o.is_open]
    last = max((i.occurred_at for i in interactions), default=None)
    return {
        "interaction_count": len(interactions),
        "open_pipeline_value": float(sum(open_values, Decimal(0))),
        "last_interaction_at": last.isoformat().replace("+00:00", "Z") if last else None,
    }


@pytest.mark.django_db
class TestCustomerSummary:
    def test_detail_has_summary_beside_unchanged_fields(self, api):
        customer = CustomerFactory(name="张三")
        populate(customer)
        InteractionFactory(customer=CustomerFactory())  # someone else's
        data = api.get(f"/api/customers/{customer.pk}").json()["data"]
        assert list(data)[: len(BASE_FIELDS)] == BASE_FIELDS
        assert data["name"] == "张三"
        assert {k: data[k] for k in expected_summary(customer)} == expected_summary(customer)
        assert data["interaction_count"] == 3
        assert data["open_pipeline_value"] == 300.5

    def test_customer_without_activity_has_zeros(self, api):
        customer = CustomerFactory()
        data = api.get(f"/api/customers/{customer.pk}").json()["data"]
        assert (data["interaction_count"], data["open_pipeline_value"], data["last_interaction_at"]) == (0, 0, None)

    def test_list_rows_have_summary(self, api):
        customers = CustomerFactory.create_batch(4)
        for customer in customers[:2]:
            populate(customer)
        rows = api.get("/api/customers").json()["data"]
        by_id = {row["id"]: row for row in rows}
        for customer in customers:
            assert {k: by_id[customer.pk][k] for k in expected_summary(customer)} == expected_summary(customer)

    def test_create_and_update_answer_with_summary(self, api):
        created = api.post("/api/customers", {"name": "Li Lei"}, format="json").json()["data"]
        assert (created["interaction_count"], created["open_pipeline_value"], created["last_interaction_at"]) == (
            0,
            0,
            None,
        )
        customer = Customer.objects.get(pk=created["id"])
        populate(customer)
        updated = api.put(f"/api/customers/{customer.pk}", {"phone": "123"}, format="json").json()["data"]
        assert updated["phone"] == "123"
        assert {k: updated[k] for k in expected_summary(customer)} == expected_summary(customer)

    @pytest.mark.parametrize("method", ["post", "patch"])
    def test_a_customer_deleted_right_after_the_write_is_answered_as_written(self, api, user, method):
        customer = CustomerFactory(name="Before")
        populate(customer)

        def delete_at_once(sender, instance, **kwargs):
            # Another request deletes the customer just after this write.
            Customer.objects.filter(pk=instance.pk).delete()

        post_save.connect(delete_at_once, sender=Customer, dispatch_uid="delete_at_once")
        try:
            if method == "post":
                response = api.post("/api/customers", {"name": "Li Lei"}, format="json")
            else:
                response = api.patch(f"/api/customers/{customer.pk}", {"name": "Li Lei"}, format="json")
        finally:
            post_save.disconnect(sender=Customer, dispatch_uid="delete_at_once")

        assert response.status_code == (201 if method == "post" else 200)
        data = response.json()["data"]
        assert data["id"] == (customer.pk if method == "patch" else data["id"]) and data["id"] is not None
        assert data["name"] == "Li Lei"
        assert data["owner_id"] == (user.pk if method == "post" else customer.owner_id)
        # Gone with its interactions and opportunities.
        assert (data["interaction_count"], data["open_pipeline_value"], data["last_interaction_at"]) == (0, 0, None)
        assert not Customer.objects.filter(pk=data["id"]).exists()

    def test_summary_fields_are_read_only(self, api):
        customer = CustomerFactory()
        api.put(f"/api/customers/{customer.pk}", {"interaction_count": 99}, format="json")
        assert api.get(f"/api/customers/{customer.pk}").json()["data"]["interaction_count"] == 0

    @pytest.mark.parametrize("size", [3, 25])
    def test_list_query_count_is_fixed(self, api, django_assert_num_queries, size):
        for customer in CustomerFactory.create_batch(size):
            populate(customer, interactions=2)
        # Token, the count and the page (a page smaller than the result, so the count is needed).
        with django_assert_num_queries(3):
            response = api.get("/api/customers", {"page_size": 2})
        assert len(response.json()["data"]) == 2
        assert response.json()["meta"]["count"] == size

    def test_detail_query_count(self, api, django_assert_num_queries):
        customer = CustomerFactory()
        populate(customer)
        with django_assert_num_queries(2):
            assert api.get(f"/api/customers/{customer.pk}").status_code == 200


@pytest.fixture
def extra_figure():
    """A summary figure registered as an app whose records belong to customers would register one."""
    parts.add_figure("test_figure", lambda: Value(7))
    yield "test_figure"
    del parts.FIGURES["test_figure"]


@pytest.mark.django_db
class TestOneSourceOfFigures:
    def test_the_admin_list_shows_the_figures_the_api_gives(self, api, admin_client):
        customers = CustomerFactory.create_batch(3)
        populate(customers[0])
        populate(customers[1], interactions=1)
        api_rows = {row["id"]: row for row in api.get("/api/customers").json()["data"]}
        admin_rows = admin_client.get("/admin/customers/customer/").context["cl"].result_list
        assert len(admin_rows) == 3
        for row in admin_rows:
            assert row.interaction_count == api_rows[row.pk]["interaction_count"]
            assert float(row.open_pipeline_value) == api_rows[row.pk]["open_pipeline_value"]
            assert (row.last_interaction_at or None) == (
                api_rows[row.pk]["last_interaction_at"] and parse_datetime(api_rows[row.pk]["last_interaction_at"])
            )

    def test_a_registered_figure_reaches_the_queryset_and_the_admin_alike(self, admin_client, extra_figure):
        CustomerFactory()
        assert Customer.objects.with_summary().get().test_figure == 7
        assert admin_client.get("/admin/customers/customer/").context["cl"].result_list[0].test_figure == 7
