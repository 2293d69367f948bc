"""``GET /api/customers/<id>/timeline``: interactions and opportunity events, newest first."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.api.history import field_changes
from customers.models import Customer
from opportunities.models import Opportunity, StageChange
from tests.factories import CompanyFactory, CustomerFactory, InteractionFactory, OpportunityFactory, UserFactory


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
        entry = {
            "type": kind,
            "at": iso(record.history_date),
            "history": {"id": record.history_id, "user_id": record.history_user_id},
        }
        if kind == "customer_changed":
            entry["changes"] = field_changes(record, record.prev_record)
        entries.append(((record.history_date, "customer_history", record.history_id), entry))
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
                "changes": [{"field": "name", "old": "Before", "new": "After"}],
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


def change(customer, **values):
    for name, value in values.items():
        setattr(customer, name, value)
    customer.save()


@pytest.mark.django_db
class TestChangedFields:
    """A "customer changed" entry names the fields that changed, from the history entry before it."""

    def test_each_change_names_its_fields_against_the_one_before(self, api):
        rep = UserFactory(username="rep")
        customer = CustomerFactory(name="Zhang", status=Customer.Status.LEAD, owner=None, email=None)
        change(customer, status=Customer.Status.ACTIVE, owner=rep)
        change(customer, email="zhang@example.cn")
        change(customer, name="Zhang Wei", status=Customer.Status.INACTIVE)
        entries = api.get(url(customer.pk)).json()["data"]
        assert [entry.get("changes") for entry in entries] == [
            [
                {"field": "name", "old": "Zhang", "new": "Zhang Wei"},
                {"field": "status", "old": "active", "new": "inactive"},
            ],
            [{"field": "email", "old": None, "new": "zhang@example.cn"}],
            [{"field": "status", "old": "lead", "new": "active"}, {"field": "owner_id", "old": None, "new": rep.pk}],
            None,  # the creation: no "changes"
        ]
        assert entries[-1]["type"] == "customer_created"

    def test_the_oldest_change_of_a_page_diffs_against_the_entry_on_the_next_page(self, api):
        customer = CustomerFactory(status=Customer.Status.LEAD, phone=None)
        for index in range(5):
            change(customer, phone=f"+86 138 0013 800{index}")
        # Newest first: 5 changes then the creation; pages of 2.
        second = api.get(url(customer.pk), {"page": 2, "page_size": 2}).json()["data"]
        assert [entry["changes"] for entry in second] == [
            [{"field": "phone", "old": "+86 138 0013 8001", "new": "+86 138 0013 8002"}],
            [{"field": "phone", "old": "+86 138 0013 8000", "new": "+86 138 0013 8001"}],
        ]
        third = api.get(url(customer.pk), {"page": 3, "page_size": 2}).json()["data"]
        assert third[0]["changes"] == [{"field": "phone", "old": None, "new": "+86 138 0013 8000"}]
        assert third[1]["type"] == "customer_created"

    def test_other_customers_changes_are_not_mixed_in(self, api):
        first, second = CustomerFactory(name="A"), CustomerFactory(name="B")
        change(second, name="B2")
        change(first, name="A2")
        change(second, name="B3")
        entries = api.get(url(first.pk)).json()["data"]
        assert entries[0]["changes"] == [{"field": "name", "old": "A", "new": "A2"}]

    def test_a_company_timeline_names_them_too(self, api):
        company = CompanyFactory()
        customer = CustomerFactory(status=Customer.Status.LEAD, company=company)
        change(customer, status=Customer.Status.PROSPECT)
        entries = api.get(f"/api/companies/{company.pk}/timeline").json()["data"]
        changed = [entry for entry in entries if entry["type"] == "customer_changed"]
        assert changed[0]["changes"] == [{"field": "status", "old": "lead", "new": "prospect"}]
        assert changed[0]["customer_id"] == customer.pk

    def test_the_changes_cost_one_query_for_the_page_however_many(self, api):
        counts = []
        for changes in (1, 15):
            customer = CustomerFactory(status=Customer.Status.LEAD)
            for index in range(changes):
                change(customer, name=f"Name {index}")
            with CaptureQueriesContext(connection) as queries:
                body = api.get(url(customer.pk), {"page_size": 50}).json()
            assert sum(entry["type"] == "customer_changed" for entry in body["data"]) == changes
            counts.append(len(queries))
        assert counts[0] == counts[1], counts

    def test_a_page_without_changes_asks_nothing_more(self, api):
        customer = CustomerFactory()
        InteractionFactory(customer=customer)
        with CaptureQueriesContext(connection) as plain:
            api.get(url(customer.pk))
        change(customer, name="Renamed")
        with CaptureQueriesContext(connection) as changed:
            api.get(url(customer.pk))
        assert len(changed) == len(plain) + 1
