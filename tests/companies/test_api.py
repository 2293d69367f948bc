"""``/api/companies`` and what links customers and opportunities to a company."""

import datetime
import importlib
import unicodedata
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from knox.models import get_token_model
from rest_framework.test import APIClient

from companies.models import Company
from companies.names import name_key
from core.models import Event
from customers.models import Customer
from opportunities.models import Opportunity
from tests.factories import (
    CompanyFactory,
    CustomerFactory,
    InteractionFactory,
    OpportunityFactory,
    UserFactory,
    member,
)

pytestmark = pytest.mark.django_db
URL = "/api/companies"


def data_of(response, status=200):
    assert response.status_code == status, response.content[:500]
    body = response.json()
    assert body["success"] is True
    return body["data"]


def error_fields(response):
    assert response.status_code == 400, response.content[:500]
    body = response.json()
    assert body["success"] is False
    return body["error"]["fields"]


class TestCompanyRecord:
    def test_create_normalises_the_domain_and_the_name_spacing(self, api, user):
        data = data_of(
            api.post(URL, {"name": "  华为  技术 ", "domain": "HTTPS://www.Huawei.com/en/about?x=1"}, format="json"),
            201,
        )
        assert (data["name"], data["domain"]) == ("华为 技术", "huawei.com")
        assert (data["owner_id"], data["created_by_id"]) == (user.pk, user.pk)
        assert (data["people_count"], data["open_pipeline_value"], data["last_interaction_at"]) == (0, 0.0, None)
        company = Company.objects.get(pk=data["id"])
        assert company.name_key == "华为 技术"
        assert company.history.get().history_type == "+"
        assert Event.objects.filter(type="company.created", object_id=company.pk).count() == 1

    @pytest.mark.parametrize(
        ("given", "stored"),
        [
            ("example.com", "example.com"),
            ("Example.COM.", "example.com"),
            ("http://user:pw@www.example.com:8080/a", "example.com"),
            ("www.sub.example.co.uk/path", "sub.example.co.uk"),
            ("华为.中国", "华为.中国"),
            ("", None),
            (None, None),
        ],
    )
    def test_domain_is_stored_bare(self, api, given, stored):
        data = data_of(api.post(URL, {"name": "Acme", "domain": given}, format="json"), 201)
        assert data["domain"] == stored

    @pytest.mark.parametrize("domain", ["not a domain", "localhost", "-bad-.com", "a..b", "x" * 300 + ".com"])
    def test_an_invalid_domain_is_a_400(self, api, domain):
        assert "domain" in error_fields(api.post(URL, {"name": "Acme", "domain": domain}, format="json"))

    def test_domain_is_unique_whatever_way_it_is_written(self, api):
        CompanyFactory(domain="example.com")
        fields = error_fields(api.post(URL, {"name": "Other", "domain": "https://WWW.example.com/"}, format="json"))
        assert fields["domain"] == ["A company with this domain already exists."]
        # Several companies without a domain are fine.
        data_of(api.post(URL, {"name": "A"}, format="json"), 201)
        data_of(api.post(URL, {"name": "B", "domain": ""}, format="json"), 201)

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({}, "name"),
            ({"name": "   "}, "name"),
            ({"name": "x" * 201}, "name"),
            ({"name": "a\x00"}, "name"),
            ({"name": 12}, "name"),
            ({"name": "A", "size": "huge"}, "size"),
            ({"name": "A", "website": "not a url"}, "website"),
            ({"name": "A", "owner_id": "x"}, "owner_id"),
            ({"name": "A", "owner_id": 10**30}, "owner_id"),
            ({"name": "A", "notes": "n" * 20_001}, "notes"),
        ],
    )
    def test_bad_input_is_a_400_on_the_field(self, api, body, field):
        assert field in error_fields(api.post(URL, body, format="json"))

    def test_malformed_json_is_a_400(self, api):
        response = api.generic("POST", URL, "{not json", content_type="application/json")
        assert response.status_code == 400 and response.json()["success"] is False

    def test_filters_and_ordering(self, api, user):
        a = CompanyFactory(name="Acme Robotics", domain="acme.com", owner=user, size=Company.Size.SMALL)
        b = CompanyFactory(name="北京星辰软件", domain="xingchen.cn")
        assert [c["id"] for c in data_of(api.get(URL, {"search": "robot"}))] == [a.pk]
        assert [c["id"] for c in data_of(api.get(URL, {"search": "星辰"}))] == [b.pk]
        assert [c["id"] for c in data_of(api.get(URL, {"search": "xingchen"}))] == [b.pk]
        assert [c["id"] for c in data_of(api.get(URL, {"domain": "https://www.ACME.com/x"}))] == [a.pk]
        assert [c["id"] for c in data_of(api.get(URL, {"owner": "me"}))] == [a.pk]
        assert [c["id"] for c in data_of(api.get(URL, {"size": "11-50"}))] == [a.pk]
        assert [c["id"] for c in data_of(api.get(URL, {"ordering": "name"}))] == [a.pk, b.pk]
        assert [c["id"] for c in data_of(api.get(URL, {"ordering": "-name"}))] == [b.pk, a.pk]
        assert api.get(URL, {"owner": "nobody"}).status_code == 400

    def test_etag_and_if_match(self, api):
        company = CompanyFactory()
        response = api.get(f"{URL}/{company.pk}")
        etag = response["ETag"]
        assert api.get(f"{URL}/{company.pk}", HTTP_IF_NONE_MATCH=etag).status_code == 304
        assert (
            api.patch(f"{URL}/{company.pk}", {"industry": "Retail"}, format="json", HTTP_IF_MATCH=etag).status_code
            == 200
        )
        stale = api.patch(f"{URL}/{company.pk}", {"industry": "Other"}, format="json", HTTP_IF_MATCH=etag)
        assert stale.status_code == 412

    def test_idempotency_key_replays_the_creation(self, api):
        first = api.post(URL, {"name": "Once"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
        again = api.post(URL, {"name": "Once"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
        assert first.status_code == again.status_code == 201
        assert again["Idempotent-Replayed"] == "true"
        assert Company.objects.filter(name="Once").count() == 1

    def test_history_lists_the_changes(self, api):
        company = data_of(api.post(URL, {"name": "Old"}, format="json"), 201)
        api.patch(f"{URL}/{company['id']}", {"name": "New"}, format="json")
        history = data_of(api.get(f"{URL}/{company['id']}/history"))
        assert history[0]["changes"] == [{"field": "name", "old": "Old", "new": "New"}]

    def test_export_csv_and_xlsx(self, api):
        CompanyFactory(name="=HYPERLINK()", domain="acme.com")
        csv_response = api.get(f"{URL}/export", {"format": "csv"})
        text = b"".join(csv_response.streaming_content).decode("utf-8-sig")
        header, row = text.splitlines()[:2]
        assert header.startswith("id,name,domain,website")
        assert "'=HYPERLINK()" in row
        assert api.get(f"{URL}/export", {"format": "xlsx"}).status_code == 200


class TestSummaryAndTimeline:
    def test_detail_has_people_open_pipeline_and_last_interaction(self, api):
        company = CompanyFactory()
        ann = CustomerFactory(company=company)
        bob = CustomerFactory(company=company)
        CustomerFactory()  # elsewhere
        OpportunityFactory(customer=ann, value=Decimal("100"), stage=Opportunity.Stage.LEAD)
        OpportunityFactory(customer=bob, value=Decimal("50.5"), stage=Opportunity.Stage.PROPOSAL)
        OpportunityFactory(customer=bob, value=Decimal("999"), stage=Opportunity.Stage.CLOSED)
        latest = timezone.now() - datetime.timedelta(hours=1)
        InteractionFactory(customer=ann, occurred_at=latest - datetime.timedelta(days=3))
        InteractionFactory(customer=bob, occurred_at=latest)
        data = data_of(api.get(f"{URL}/{company.pk}"))
        assert (data["people_count"], data["open_pipeline_value"]) == (2, 150.5)
        assert data["last_interaction_at"] == latest.isoformat().replace("+00:00", "Z")
        listed = next(row for row in data_of(api.get(URL)) if row["id"] == company.pk)
        assert (listed["people_count"], listed["open_pipeline_value"]) == (2, 150.5)

    def test_a_reps_figures_are_those_of_the_people_of_their_book(self, api, db):
        rep, other_rep = member("rep", "Sales rep"), member("other", "Sales rep")
        company = CompanyFactory(owner=None)
        latest = timezone.now() - datetime.timedelta(hours=1)
        for owner, people, value, occurred_at in (
            (rep, 1, Decimal("100"), latest - datetime.timedelta(days=2)),
            (other_rep, 2, Decimal("50.5"), latest),
        ):
            for _ in range(people):
                person = CustomerFactory(company=company, owner=owner)
                OpportunityFactory(customer=person, value=value, stage=Opportunity.Stage.LEAD)
                InteractionFactory(customer=person, occurred_at=occurred_at)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {get_token_model().objects.create(rep)[1]}")

        def figures(data):
            return data["people_count"], data["open_pipeline_value"], data["last_interaction_at"]

        def at(moment):
            return moment.isoformat().replace("+00:00", "Z")

        mine = (1, 100.0, at(latest - datetime.timedelta(days=2)))
        assert figures(data_of(client.get(f"{URL}/{company.pk}"))) == mine
        assert [figures(row) for row in data_of(client.get(URL))] == [mine]
        assert figures(data_of(client.patch(f"{URL}/{company.pk}", {"notes": "Hi"}, format="json"))) == mine
        everyone = (3, 201.0, at(latest))
        assert figures(data_of(api.get(f"{URL}/{company.pk}"))) == everyone
        assert [figures(row) for row in data_of(api.get(URL))] == [everyone]

    @pytest.mark.parametrize("who", ["manager", "rep"])
    @pytest.mark.parametrize("path", ["list", "detail"])
    def test_queries_do_not_grow_with_people(self, api, user, path, who):
        if who == "rep":
            user = member("rep", "Sales rep")
            api = APIClient()
            api.credentials(HTTP_AUTHORIZATION=f"Bearer {get_token_model().objects.create(user)[1]}")

        def grow(company, people):
            for _ in range(people):
                customer = CustomerFactory(company=company, owner=user)
                InteractionFactory.create_batch(2, customer=customer)
                OpportunityFactory.create_batch(2, customer=customer)

        def count(company):
            url = URL if path == "list" else f"{URL}/{company.pk}"
            with CaptureQueriesContext(connection) as captured:
                assert api.get(url, {"page_size": 2}).status_code == 200
            return len(captured)

        small = CompanyFactory(owner=user)
        grow(small, 1)
        CompanyFactory(owner=user)
        CompanyFactory(owner=user)
        few = count(small)
        big = CompanyFactory(owner=user)
        grow(big, 6)
        for _ in range(5):
            grow(CompanyFactory(owner=user), 2)
        assert count(big) == few == (3 if path == "list" else 2)

    def test_timeline_merges_the_peoples_timelines_newest_first(self, api):
        company = CompanyFactory()
        ann, bob = CustomerFactory(company=company), CustomerFactory(company=company)
        other = CustomerFactory()
        now = timezone.now()
        InteractionFactory(customer=ann, occurred_at=now - datetime.timedelta(days=2), notes="ann call")
        InteractionFactory(customer=bob, occurred_at=now - datetime.timedelta(days=1), notes="bob call")
        InteractionFactory(customer=other, notes="not theirs")
        deal = OpportunityFactory(customer=bob, title="Deal")
        entries = data_of(api.get(f"{URL}/{company.pk}/timeline"))
        # Each person's own history is there too (created, just now: the newest).
        people = [e for e in entries if e["type"] != "customer_created"]
        assert [(e["type"], e["customer_id"]) for e in people] == [
            ("opportunity_created", bob.pk),
            ("interaction", bob.pk),
            ("interaction", ann.pk),
        ]
        assert sorted(e["customer_id"] for e in entries if e["type"] == "customer_created") == sorted([ann.pk, bob.pk])
        assert people[0]["opportunity"] == {"id": deal.pk, "title": "Deal"}
        assert people[2]["interaction"]["notes"] == "ann call"
        page = api.get(f"{URL}/{company.pk}/timeline", {"page_size": 1}).json()
        assert len(page["data"]) == 1 and page["meta"]["count"] == 5

    def test_a_reps_company_timeline_holds_only_the_people_of_their_book(self, db):
        rep, other_rep = UserFactory(username="rep"), UserFactory(username="other")
        for user in (rep, other_rep):
            user.groups.add(Group.objects.get(name="Sales rep"))
        company = CompanyFactory(owner=rep)
        mine, theirs = CustomerFactory(company=company, owner=rep), CustomerFactory(company=company, owner=other_rep)
        InteractionFactory(customer=mine, notes="my call")
        InteractionFactory(customer=theirs, notes="their call")
        OpportunityFactory(customer=theirs, title="Their deal")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {get_token_model().objects.create(rep)[1]}")

        entries = data_of(client.get(f"{URL}/{company.pk}/timeline"))

        assert {entry["customer_id"] for entry in entries} == {mine.pk}
        assert [e["interaction"]["notes"] for e in entries if e["type"] == "interaction"] == ["my call"]


class TestDeletion:
    def test_deleting_a_company_leaves_its_people_and_deals_without_one(self, api):
        company = CompanyFactory()
        people = [CustomerFactory(company=company) for _ in range(3)]
        deal = OpportunityFactory(customer=people[0])
        assert deal.company == company
        response = api.delete(f"{URL}/{company.pk}")
        body = data_of(response)
        assert body["deleted"] == {"companies": 1}
        assert body["unlinked"] == {"people": 3, "opportunities": 1}
        assert not Company.objects.exists()
        for person in people:
            person.refresh_from_db()
            assert (person.company_id, person.company_name) == (None, None)
            latest = person.history.first()
            assert (latest.company_id, latest.company_name) == (None, None)
        deal.refresh_from_db()
        assert deal.company_id is None
        assert Event.objects.filter(type="customer.updated").count() == 3
        assert Event.objects.filter(type="company.deleted", object_id=company.pk).count() == 1


class TestCustomerCompanyLink:
    CUSTOMERS = "/api/customers"

    def test_company_text_links_to_the_company_of_that_name_ignoring_case_and_spaces(self, api):
        company = CompanyFactory(name="ABC科技")
        data = data_of(api.post(self.CUSTOMERS, {"name": "张三", "company": "  abc科技 "}, format="json"), 201)
        assert (data["company"], data["company_id"]) == ("ABC科技", company.pk)
        assert Company.objects.count() == 1

    def test_unknown_company_text_creates_the_company_owned_like_the_customer(self, api, user):
        data = data_of(api.post(self.CUSTOMERS, {"name": "李四", "company": "新公司"}, format="json"), 201)
        company = Company.objects.get(pk=data["company_id"])
        assert (company.name, company.owner, company.created_by) == ("新公司", user, user)
        assert data["company"] == "新公司"

    def test_company_id_links_and_the_text_follows(self, api):
        company = CompanyFactory(name="Contoso Ltd")
        data = data_of(api.post(self.CUSTOMERS, {"name": "Ann", "company_id": company.pk}, format="json"), 201)
        assert (data["company"], data["company_id"]) == ("Contoso Ltd", company.pk)

    def test_company_and_company_id_must_agree(self, api):
        company = CompanyFactory(name="Contoso Ltd")
        body = {"name": "Ann", "company_id": company.pk, "company": "Fabrikam"}
        assert "company" in error_fields(api.post(self.CUSTOMERS, body, format="json"))
        body["company"] = "CONTOSO  ltd"
        assert data_of(api.post(self.CUSTOMERS, body, format="json"), 201)["company_id"] == company.pk

    @pytest.mark.parametrize("company_id", [999999, 0, "x", 1.5, 10**30])
    def test_unknown_company_id_is_a_400(self, api, company_id):
        fields = error_fields(api.post(self.CUSTOMERS, {"name": "Ann", "company_id": company_id}, format="json"))
        assert "company_id" in fields

    def test_blank_or_null_company_unlinks(self, api):
        customer = CustomerFactory(company="Old Co")
        for value in ("", None):
            data = data_of(api.patch(f"{self.CUSTOMERS}/{customer.pk}", {"company": value}, format="json"))
            assert (data["company"], data["company_id"]) == (None, None)
            customer = CustomerFactory(company="Old Co")
        data = data_of(api.patch(f"{self.CUSTOMERS}/{customer.pk}", {"company_id": None}, format="json"))
        assert (data["company"], data["company_id"]) == (None, None)
        assert Company.objects.filter(name="Old Co").count() == 1

    def test_same_name_keeps_the_link_a_new_name_moves_it(self, api):
        first = CompanyFactory(name="Twin")
        second = CompanyFactory(name="twin")  # another company with the same name
        customer = CustomerFactory(company=second)
        data = data_of(api.patch(f"{self.CUSTOMERS}/{customer.pk}", {"company": "TWIN"}, format="json"))
        assert data["company_id"] == second.pk
        data = data_of(api.patch(f"{self.CUSTOMERS}/{customer.pk}", {"company": "Elsewhere"}, format="json"))
        assert data["company"] == "Elsewhere" and data["company_id"] not in (first.pk, second.pk)

    def test_renaming_a_company_changes_its_peoples_company_text(self, api):
        company = CompanyFactory(name="Old name")
        customer = CustomerFactory(company=company)
        before = customer.updated_at
        data_of(api.patch(f"{URL}/{company.pk}", {"name": "New name"}, format="json"))
        customer.refresh_from_db()
        assert customer.company_name == "New name"
        assert data_of(api.get(self.CUSTOMERS, {"search": "new nam"}))[0]["id"] == customer.pk
        # A change of the person as the API shows them (their ``company``): in their history and events, and
        # seen by clients that sync by ``updated_at``.
        assert customer.updated_at > before
        latest, earlier = customer.history.all()[:2]
        assert (earlier.company_name, latest.company_name) == ("Old name", "New name")
        event = Event.objects.filter(type="customer.updated", object_id=customer.pk).latest("id")
        assert event.changes == {"company_name": {"old": "Old name", "new": "New name"}}

    def test_customers_filter_by_company_id(self, api):
        company = CompanyFactory()
        mine = CustomerFactory(company=company)
        CustomerFactory(company="Other")
        assert [c["id"] for c in data_of(api.get(self.CUSTOMERS, {"company_id": company.pk}))] == [mine.pk]
        assert api.get(self.CUSTOMERS, {"company_id": "x"}).status_code == 400

    def test_batch_and_import_link_by_name_too(self, api):
        response = api.post(
            f"{self.CUSTOMERS}/batch",
            {"create": [{"name": "A", "company": "Batch Co"}, {"name": "B", "company": "batch co"}]},
            format="json",
        )
        assert response.status_code == 200
        assert Customer.objects.filter(company__name="Batch Co").count() == 2


class TestOpportunityCompany:
    OPPORTUNITIES = "/api/opportunities"

    def test_defaults_to_the_customers_company_on_create(self, api):
        company = CompanyFactory()
        customer = CustomerFactory(company=company)
        data = data_of(api.post(self.OPPORTUNITIES, {"customer_id": customer.pk, "title": "T"}, format="json"), 201)
        assert data["company_id"] == company.pk
        # Later changes of the customer's company do not move the deal.
        customer.company = CompanyFactory()
        customer.save()
        assert Opportunity.objects.get(pk=data["id"]).company_id == company.pk

    def test_another_company_or_none(self, api):
        customer = CustomerFactory(company=CompanyFactory())
        other = CompanyFactory()
        body = {"customer_id": customer.pk, "title": "T", "company_id": other.pk}
        created = data_of(api.post(self.OPPORTUNITIES, body, format="json"), 201)
        assert created["company_id"] == other.pk
        body["company_id"] = None
        assert data_of(api.post(self.OPPORTUNITIES, body, format="json"), 201)["company_id"] == customer.company_id
        unlinked = api.patch(f"{self.OPPORTUNITIES}/{created['id']}", {"company_id": None}, format="json")
        assert data_of(unlinked)["company_id"] is None
        body["company_id"] = 999999
        assert "company_id" in error_fields(api.post(self.OPPORTUNITIES, body, format="json"))


class TestPipelineGroups:
    REPORT = "/api/reports/pipeline"

    def test_default_output_has_no_groups(self, api):
        assert "groups" not in data_of(api.get(self.REPORT))

    def test_group_by_company_owner_and_stage(self, api, user):
        acme, globex = CompanyFactory(name="Acme"), CompanyFactory(name="Globex")
        a = CustomerFactory(company=acme, owner=user)
        g = CustomerFactory(company=globex)
        OpportunityFactory(customer=a, value=Decimal("100"), stage=Opportunity.Stage.LEAD)
        OpportunityFactory(customer=a, value=Decimal("40"), stage=Opportunity.Stage.CLOSED)
        OpportunityFactory(customer=g, value=Decimal("500"), stage=Opportunity.Stage.PROPOSAL)
        OpportunityFactory(customer=CustomerFactory(), value=Decimal("7"), stage=Opportunity.Stage.LOST)
        data = data_of(api.get(self.REPORT, {"group_by": "company"}))
        assert data["group_by"] == "company"
        assert [(g["key"], g["label"], g["open"]["total_value"]) for g in data["groups"]] == [
            (globex.pk, "Globex", 500.0),
            (acme.pk, "Acme", 100.0),
            (None, None, 0.0),
        ]
        assert data["groups"][1]["won"] == {"count": 1, "total_value": 40.0, "weighted_value": 40.0}
        assert data["groups"][2]["lost"]["count"] == 1
        owners = data_of(api.get(self.REPORT, {"group_by": "owner"}))["groups"]
        assert {(g["key"], g["label"]) for g in owners} == {(user.pk, user.username), (None, None)}
        stages = data_of(api.get(self.REPORT, {"group_by": "stage", "group_limit": 2}))["groups"]
        assert [(g["key"], g["label"]) for g in stages] == [("proposal", "Proposal"), ("lead", "Lead")]

    @pytest.mark.parametrize("params", [{"group_by": "customer"}, {"group_by": "company", "group_limit": 0}])
    def test_bad_grouping_is_a_400(self, api, params):
        assert api.get(self.REPORT, params).status_code == 400

    def test_grouped_report_is_one_more_query_whatever_the_data(self, api):
        def count():
            with CaptureQueriesContext(connection) as captured:
                assert api.get(self.REPORT, {"group_by": "company"}).status_code == 200
            return len(captured)

        OpportunityFactory(customer=CustomerFactory(company=CompanyFactory()))
        few = count()
        for _ in range(5):
            OpportunityFactory.create_batch(2, customer=CustomerFactory(company=CompanyFactory()))
        assert count() == few


# One "ﷺ" is 18 letters once NFKC has unfolded it: twelve make a key longer than its column.
LIGATURES = "ﷺ" * 12


def test_a_company_named_longer_than_its_key_is_kept_and_found_again(api, db):
    created = data_of(api.post("/api/companies", {"name": LIGATURES}, format="json"), 201)
    company = Company.objects.get(pk=created["id"])
    assert len(company.name_key) == 200

    first = data_of(api.post("/api/customers", {"name": "甲", "company": LIGATURES}, format="json"), 201)
    second = data_of(api.post("/api/customers", {"name": "乙", "company": f" {LIGATURES} "}, format="json"), 201)
    assert first["company_id"] == second["company_id"] == company.pk
    assert Company.objects.count() == 1


@pytest.mark.skipif(connection.vendor != "sqlite", reason="PostgreSQL enforces the column's length")
def test_the_migration_cuts_a_key_kept_longer_than_its_column(db):
    from django.apps import apps

    cut = importlib.import_module("companies.migrations.0010_name_key_cut_to_its_length").cut
    company = CompanyFactory(name=LIGATURES)
    other = CompanyFactory(name="Acme")
    unfolded = " ".join(unicodedata.normalize("NFKC", LIGATURES).casefold().split())
    Company.objects.filter(pk=company.pk).update(name_key=unfolded)  # as the key was made before
    assert len(unfolded) > 200

    cut(apps, None)

    company.refresh_from_db()
    assert company.name_key == name_key(LIGATURES) and len(company.name_key) == 200
    assert Company.objects.get(pk=other.pk).name_key == "acme"
    assert Company.objects.named(LIGATURES).get() == company
