"""``GET /api/customers/<id>/timeline``: interactions and opportunity events, newest first."""

import datetime

import pytest
from django.utils import timezone

from opportunities.models import Opportunity, StageChange
from tests.factories import CustomerFactory, InteractionFactory, OpportunityFactory


def url(customer_id):
    return f"/api/customers/{customer_id}/timeline"


def iso(value):
    return value.isoformat().replace("+00:00", "Z")


def build_history(customer, interactions, start):
    """``interactions`` interactions an hour apart, and one opportunity moved through the stages."""
    for index in range(interactions):
        InteractionFactory(customer=customer, occurred_at=start + datetime.timedelta(hours=index))
    opportunity = OpportunityFactory(customer=customer, title="ERP系统")
    for stage in (
        Opportunity.Stage.PROPOSAL,
        Opportunity.Stage.CLOSED,
        Opportunity.Stage.NEGOTIATION,
        Opportunity.Stage.LOST,
    ):
        opportunity.stage = stage
        opportunity.probability = None
        opportunity.save()
    # Spread the stage changes among the interactions.
    for offset, change in enumerate(StageChange.objects.filter(opportunity=opportunity).order_by("id")):
        StageChange.objects.filter(pk=change.pk).update(
            changed_at=start + datetime.timedelta(hours=offset * 2, minutes=30)
        )
    return opportunity


def expected_entries(customer):
    entries = [
        (
            (i.occurred_at, "interaction", i.pk),
            {
                "type": "interaction",
                "at": iso(i.occurred_at),
                "interaction": {"id": i.pk, "interaction_type": i.interaction_type, "notes": i.notes},
            },
        )
        for i in customer.interactions.all()
    ]
    kinds = {None: "opportunity_created", "closed": "opportunity_won", "lost": "opportunity_lost"}
    for change in StageChange.objects.filter(opportunity__customer=customer).select_related("opportunity"):
        kind = kinds.get(change.to_stage if change.from_stage else None, "opportunity_stage_changed")
        if change.from_stage in ("closed", "lost") and change.to_stage not in ("closed", "lost"):
            kind = "opportunity_reopened"
        entries.append(
            (
                (change.changed_at, "stage_change", change.pk),
                {
                    "type": kind,
                    "at": iso(change.changed_at),
                    "opportunity": {"id": change.opportunity_id, "title": change.opportunity.title},
                    "from_stage": change.from_stage,
                    "to_stage": change.to_stage,
                },
            )
        )
    for record in customer.history.all():
        kind = {"+": "customer_created", "~": "customer_changed"}[record.history_type]
        entries.append(
            (
                (record.history_date, "customer_history", record.history_id),
                {
                    "type": kind,
                    "at": iso(record.history_date),
                    "history": {"id": record.history_id, "user_id": record.history_user_id},
                },
            )
        )
    entries.sort(key=lambda pair: pair[0], reverse=True)
    return [entry for _, entry in entries]


@pytest.mark.django_db
class TestTimeline:
    def test_merges_interactions_and_stage_changes_newest_first(self, api):
        customer = CustomerFactory()
        other = CustomerFactory()
        start = timezone.make_aware(datetime.datetime(2026, 3, 1, 9))
        build_history(customer, 6, start)
        build_history(other, 3, start)
        body = api.get(url(customer.pk)).json()
        assert body["success"] is True
        assert body["meta"]["count"] == 6 + 5 + 1
        assert body["data"] == expected_entries(customer)
        assert body["data"][0]["type"] == "customer_created"
        assert [entry["type"] for entry in body["data"] if entry["type"].startswith("opportunity_")] == [
            "opportunity_lost",
            "opportunity_reopened",
            "opportunity_won",
            "opportunity_stage_changed",
            "opportunity_created",
        ]

    def test_deep_pages_are_slices_of_the_merged_order(self, api):
        customer = CustomerFactory()
        build_history(customer, 23, timezone.make_aware(datetime.datetime(2026, 3, 1, 9)))
        expected = expected_entries(customer)
        pages = []
        for page in (1, 2, 3, 4):
            body = api.get(url(customer.pk), {"page": page, "page_size": 8}).json()
            assert body["meta"]["count"] == 29
            pages.extend(body["data"])
        assert pages == expected
        assert api.get(url(customer.pk), {"page": 5, "page_size": 8}).status_code == 404

    def test_the_customers_own_changes_are_in_it(self, api, user):
        customer = CustomerFactory(name="Before")
        response = api.put(url(customer.pk).removesuffix("/timeline"), {"name": "After"}, format="json")
        assert response.status_code == 200
        entries = api.get(url(customer.pk)).json()["data"]
        changed, created = customer.history.all()
        assert entries == [
            {
                "type": "customer_changed",
                "at": iso(changed.history_date),
                "history": {"id": changed.history_id, "user_id": user.pk},
            },
            {
                "type": "customer_created",
                "at": iso(created.history_date),
                "history": {"id": created.history_id, "user_id": None},
            },
        ]

    def test_a_new_customers_timeline_is_its_creation(self, api):
        body = api.get(url(CustomerFactory().pk) + "/").json()
        assert [entry["type"] for entry in body["data"]] == ["customer_created"]
        assert body["meta"]["count"] == 1

    def test_unknown_customer_is_404_in_the_envelope(self, api):
        response = api.get(url(987654))
        assert response.status_code == 404
        assert response.json()["success"] is False

    @pytest.mark.parametrize("page", ["0", "x"])
    def test_bad_page_is_400(self, api, page):
        response = api.get(url(CustomerFactory().pk), {"page": page})
        assert response.status_code == 400

    def test_requires_authentication(self, anon_client):
        assert anon_client.get(url(CustomerFactory().pk)).status_code == 401

    @pytest.mark.parametrize("size", [12, 40])
    def test_query_count_is_fixed(self, api, django_assert_num_queries, size):
        customer = CustomerFactory()
        build_history(customer, size, timezone.make_aware(datetime.datetime(2026, 3, 1, 9)))
        # Token, the customer, the count and the page.
        with django_assert_num_queries(4):
            assert api.get(url(customer.pk), {"page_size": 10}).status_code == 200
