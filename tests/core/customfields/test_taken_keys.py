"""A custom field whose key a field of the record took later (a definition made before the version that added
the field: the key is checked only when chosen): its values stay apart from the field's on every path, its
definition stays editable, and files head its column ``cf_<key>``.

The definitions are written directly, as they were made before the field existed (opportunities' ``lost_reason``,
``closed_at``; customers' ``notes``)."""

import csv
import io

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from core.changesets import undo
from core.models import Changeset, CustomField, Event
from customers.models import Customer
from opportunities.models import Opportunity
from tests.core.admin.helpers import change_form_data, export_data, form_data, import_rows, read_csv
from tests.core.customfields.test_commands import run
from tests.factories import CustomerFactory, OpportunityFactory, UserFactory
from webhooks.delivery import payload_for

pytestmark = pytest.mark.django_db

Stage = Opportunity.Stage
URL = "/api/opportunities"
CHANGE = "admin:opportunities_opportunity_change"
CHANGELIST = reverse("admin:opportunities_opportunity_changelist")


def define(key, model="opportunities", **extra):
    return CustomField.objects.create(model=model, key=key, label=extra.pop("label", "Why lost (before)"), **extra)


@pytest.fixture
def taken():
    return define("lost_reason", show_in_list=True, filterable=True)


@pytest.fixture
def deal(taken):
    return OpportunityFactory(
        title="Lost one", stage=Stage.LOST, lost_reason="Price", custom_fields={"lost_reason": "Budget cut"}
    )


def api_csv(api, path, params=None):
    response = api.get(path, {"format": "csv", **(params or {})})
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


class TestTheDefinition:
    def test_the_api_lists_updates_and_deletes_it(self, api, taken, deal):
        listed = api.get("/api/custom-fields", {"model": "opportunities"}).json()["data"]
        assert [(d["key"], d["label"]) for d in listed] == [("lost_reason", "Why lost (before)")]
        patched = api.patch(f"/api/custom-fields/{taken.pk}", {"label": "Old reason", "order": 3}, format="json")
        assert patched.status_code == 200, patched.content
        assert (patched.json()["data"]["label"], patched.json()["data"]["order"]) == ("Old reason", 3)
        body = {"model": "opportunities", "key": "lost_reason", "label": "Old reason", "field_type": "long_text"}
        put = api.put(f"/api/custom-fields/{taken.pk}", body, format="json")
        assert put.status_code == 200, put.content
        taken.refresh_from_db()
        assert (taken.label, taken.field_type) == ("Old reason", "long_text")
        assert api.delete(f"/api/custom-fields/{taken.pk}").status_code in (200, 204)
        assert not CustomField.objects.exists()
        deal.refresh_from_db()
        assert (deal.lost_reason, deal.custom_fields) == ("Price", {"lost_reason": "Budget cut"})

    def test_its_key_still_cannot_change_and_a_new_one_cannot_take_a_field_name(self, api, taken):
        renamed = api.patch(f"/api/custom-fields/{taken.pk}", {"key": "old_lost_reason"}, format="json")
        assert renamed.status_code == 400
        assert "cannot change" in renamed.json()["error"]["fields"]["key"][0]
        again = api.post("/api/custom-fields", {"model": "customers", "key": "phone", "label": "Phone"}, format="json")
        assert again.status_code == 400
        assert again.json()["error"]["fields"]["key"] == ["“phone” is the name of a field of the record."]

    def test_the_admin_saves_its_page(self, admin_client, taken):
        url = reverse("admin:core_customfield_change", args=[taken.pk])
        page = admin_client.get(url)
        data = {**form_data(page.context["adminform"].form), "label": "Old reason", "label_zh": "旧原因"}
        response = admin_client.post(url, data)
        assert response.status_code == 302, response.context["adminform"].form.errors
        taken.refresh_from_db()
        assert (taken.label, taken.label_zh) == ("Old reason", "旧原因")


class TestTheAdminLabels:
    """The record's field and the custom field of its key show on the same pages, often under the same label: the
    custom field's is marked."""

    @pytest.mark.parametrize(
        ("language", "field", "custom"),
        [
            ("en", "Lost reason", "Lost reason (custom field)"),
            ("zh-hans", "丢单原因", "丢单原因（自定义字段）"),
        ],
    )
    def test_its_form_field_column_and_filter_say_it_is_the_custom_field(
        self, admin_client, taken, deal, language, field, custom
    ):
        # Labelled as the field that came later is.
        taken.label, taken.label_zh = "Lost reason", "丢单原因"
        taken.save()
        form = admin_client.get(reverse(CHANGE, args=[deal.pk]), HTTP_ACCEPT_LANGUAGE=language).context["adminform"]
        labels = [str(form.form.fields[name].label) for name in ("lost_reason", "cf_lost_reason")]
        assert labels == [field, custom]
        changelist = admin_client.get(CHANGELIST, HTTP_ACCEPT_LANGUAGE=language).context["cl"]
        assert custom in [str(spec.title) for spec in changelist.filter_specs]
        assert custom in [getattr(column, "short_description", None) for column in changelist.list_display]

    def test_a_custom_field_of_a_free_key_keeps_its_label(self, admin_client, deal):
        define("why_lost", label="Why lost", show_in_list=True)
        form = admin_client.get(reverse(CHANGE, args=[deal.pk])).context["adminform"].form
        assert form.fields["cf_why_lost"].label == "Why lost"


class TestFiles:
    def test_the_api_export_heads_its_column_cf_key(self, api, deal):
        header, row = api_csv(api, f"{URL}/export")
        assert header.count("lost_reason") == 1 and header[-1] == "cf_lost_reason"
        assert (row[header.index("lost_reason")], row[-1]) == ("Price", "Budget cut")

    # A field of the record, one the import does not set, and a column of the file alone (the customer's name).
    @pytest.mark.parametrize("key", ["lost_reason", "closed_at", "customer_name"])
    def test_the_admin_export_keeps_its_values_and_imports_back_to_the_same(self, admin_client, key):
        define(key)
        deal = OpportunityFactory(stage=Stage.LOST, lost_reason="Price", custom_fields={key: "Budget cut"})
        before = Opportunity.objects.values().get(pk=deal.pk)
        form = admin_client.get(f"{CHANGELIST}export/").context["form"]
        [row] = read_csv(admin_client.post(f"{CHANGELIST}export/", export_data(form)))
        assert (row[f"cf_{key}"], row["lost_reason"], row["id"]) == ("Budget cut", "Price", str(deal.pk))
        import_rows(admin_client, CHANGELIST, [list(row), list(row.values())])
        assert Opportunity.objects.values().get(pk=deal.pk) == before
        row[f"cf_{key}"] = "Reorg"
        import_rows(admin_client, CHANGELIST, [list(row), list(row.values())])
        deal.refresh_from_db()
        assert (deal.lost_reason, deal.custom_fields) == ("Price", {key: "Reorg"})

    def test_an_admin_import_sets_each_from_its_own_column(self, admin_client, deal):
        rows = [["id", "customer", "title", "lost_reason", "cf_lost_reason"]]
        rows.append([deal.pk, deal.customer_id, deal.title, "Timing", "Merged elsewhere"])
        import_rows(admin_client, CHANGELIST, rows)
        deal.refresh_from_db()
        assert (deal.lost_reason, deal.custom_fields) == ("Timing", {"lost_reason": "Merged elsewhere"})
        import_rows(admin_client, CHANGELIST, [rows[0][:4], [deal.pk, deal.customer_id, deal.title, "Price"]])
        deal.refresh_from_db()
        assert (deal.lost_reason, deal.custom_fields) == ("Price", {"lost_reason": "Merged elsewhere"})

    @pytest.mark.parametrize("key", ["closed_at", "customer_name"])
    def test_a_record_column_the_import_does_not_set_never_sets_the_custom_field(self, admin_client, key):
        define(key)
        deal = OpportunityFactory(stage=Stage.LOST, custom_fields={key: "last spring"})
        rows = [["id", "customer", "title", key], [deal.pk, deal.customer_id, "Renamed", "2026-01-01"]]
        import_rows(admin_client, CHANGELIST, rows)
        deal.refresh_from_db()
        assert (deal.title, deal.custom_fields) == ("Renamed", {key: "last spring"})

    def test_a_command_import_takes_the_cf_key_column(self, tmp_path):
        define("owner", model="customers", label="Account owner (before)")
        path = tmp_path / "c.csv"
        path.write_text("name,owner,cf_owner\nAnn,not set by this import,Bob at the branch\n")
        run("import_customers", path)
        ann = Customer.objects.get(name="Ann")
        assert (ann.owner, ann.custom_fields) == (None, {"owner": "Bob at the branch"})


class TestWhatWasAlreadyApart:
    """Paths that keep the two apart by design (``custom_fields.<key>``, ``?cf_<key>=``, form fields ``cf_<key>``)."""

    def test_the_api_reads_and_writes_each_on_its_own(self, api, deal):
        data = api.get(f"{URL}/{deal.pk}").json()["data"]
        assert (data["lost_reason"], data["custom_fields"]) == ("Price", {"lost_reason": "Budget cut"})
        response = api.patch(f"{URL}/{deal.pk}", {"custom_fields": {"lost_reason": "Timing"}}, format="json")
        assert response.json()["data"]["lost_reason"] == "Price"
        response = api.patch(f"{URL}/{deal.pk}", {"lost_reason": "Features"}, format="json")
        assert response.json()["data"]["custom_fields"] == {"lost_reason": "Timing"}
        deal.refresh_from_db()
        assert (deal.lost_reason, deal.custom_fields) == ("Features", {"lost_reason": "Timing"})
        events = list(Event.objects.filter(type="opportunity.updated").order_by("id"))
        # A webhook's body carries the event as the feed does.
        body = payload_for(events[-1])["data"]
        assert (body["data"]["lost_reason"], body["data"]["custom_fields"]) == ("Features", {"lost_reason": "Timing"})
        assert [event.changes for event in events] == [
            {"custom_fields": {"old": {"lost_reason": "Budget cut"}, "new": {"lost_reason": "Timing"}}},
            {"lost_reason": {"old": "Price", "new": "Features"}},
        ]
        entries = api.get(f"{URL}/{deal.pk}/history").json()["data"]
        assert [entry["changes"] for entry in entries[:2]] == [
            [{"field": "lost_reason", "old": "Price", "new": "Features"}],
            [{"field": "custom_fields", "old": {"lost_reason": "Budget cut"}, "new": {"lost_reason": "Timing"}}],
        ]

    def test_the_api_filters_and_orders_by_the_custom_field(self, api, deal):
        other = OpportunityFactory(stage=Stage.LOST, lost_reason="Budget cut", custom_fields={"lost_reason": "Price"})
        found = api.get(URL, {"cf_lost_reason": "Budget cut"}).json()["data"]
        assert [row["id"] for row in found] == [deal.pk]
        ordered = api.get(URL, {"ordering": "cf_lost_reason"}).json()["data"]
        assert [row["id"] for row in ordered] == [deal.pk, other.pk]
        ordered = api.get(URL, {"ordering": "-cf_lost_reason"}).json()["data"]
        assert [row["id"] for row in ordered] == [other.pk, deal.pk]

    def test_the_admin_change_and_add_forms_keep_each(self, admin_client, deal):
        change = reverse(CHANGE, args=[deal.pk])
        page = admin_client.get(change)
        data = change_form_data(page)
        assert (data["lost_reason"], data["cf_lost_reason"]) == ("Price", "Budget cut")
        response = admin_client.post(change, {**data, "lost_reason": "Timing", "cf_lost_reason": "Reorg"})
        assert response.status_code == 302, response.context["adminform"].form.errors
        deal.refresh_from_db()
        assert (deal.lost_reason, deal.custom_fields) == ("Timing", {"lost_reason": "Reorg"})
        add = reverse("admin:opportunities_opportunity_add")
        data = change_form_data(admin_client.get(add))
        customer = CustomerFactory()
        data.update(
            customer=customer.pk, title="New", value="10", stage=Stage.LOST, lost_reason="Price", cf_lost_reason="Old"
        )
        response = admin_client.post(add, data)
        assert response.status_code == 302, response.context["adminform"].form.errors
        new = Opportunity.objects.get(title="New")
        assert (new.lost_reason, new.custom_fields) == ("Price", {"lost_reason": "Old"})

    def test_a_read_only_user_sees_each(self, deal):
        viewer = UserFactory(is_staff=True)
        viewer.groups.add(Group.objects.get(name="Read-only"))
        client = Client()
        client.force_login(viewer)
        page = client.get(reverse(CHANGE, args=[deal.pk]))
        assert page.status_code == 200
        text = page.content.decode()
        assert "Why lost (before)" in text and "Budget cut" in text and "Price" in text

    def test_the_admin_list_and_history_show_each(self, admin_client, deal):
        OpportunityFactory(stage=Stage.LOST, lost_reason="Price")
        page = admin_client.get(CHANGELIST, {"cf_lost_reason": "!set"})
        assert [row.pk for row in page.context["cl"].result_list] == [deal.pk]
        assert "Why lost (before)" in page.content.decode() and "Budget cut" in page.content.decode()
        page = admin_client.get(CHANGELIST, {"lost_reason": "given"})
        assert page.status_code == 200 and page.context["cl"].result_count == 2
        deal.custom_fields = {"lost_reason": "Reorg"}
        deal.lost_reason = "Timing"
        deal.save()
        history = admin_client.get(reverse("admin:opportunities_opportunity_history", args=[deal.pk]))
        text = history.content.decode()
        assert "<strong>Lost reason:</strong> Price&nbsp;&rarr;&nbsp;&nbsp;Timing" in text
        assert "<strong>Why lost (before) (custom field):</strong> Budget cut&nbsp;&rarr;&nbsp;&nbsp;Reorg" in text

    def test_undoing_an_import_puts_back_each(self, admin_user, admin_client, deal):
        rows = [["id", "customer", "title", "lost_reason", "cf_lost_reason"]]
        import_rows(admin_client, CHANGELIST, [*rows, [deal.pk, deal.customer_id, deal.title, "Timing", "Reorg"]])
        changeset = Changeset.objects.filter(kind="import").latest("id")
        [row] = changeset.rows.all()
        assert sorted(row.changes()) == [
            ("custom_fields", {"lost_reason": "Budget cut"}, {"lost_reason": "Reorg"}),
            ("lost_reason", "Price", "Timing"),
        ]
        undo(changeset, user=admin_user)
        deal.refresh_from_db()
        assert (deal.lost_reason, deal.custom_fields) == ("Price", {"lost_reason": "Budget cut"})
