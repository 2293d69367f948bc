"""Tags on customers, companies and opportunities: the rules, the API, filters, counts, history and events."""

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from knox.models import get_token_model
from rest_framework.test import APIClient

from companies.models import Company
from core import tags
from core.models import Event, Tag
from customers.models import Customer
from customers.services import merge_customers
from opportunities.models import Opportunity
from tests.concurrency import deadlocked, in_turn
from tests.factories import CompanyFactory, CustomerFactory, OpportunityFactory, UserFactory

pytestmark = pytest.mark.django_db

RESOURCES = {"customers": Customer, "companies": Company, "opportunities": Opportunity}


def data_of(response, status=200):
    assert response.status_code == status, response.content[:500]
    body = response.json()
    assert body["success"] is True
    return body["data"]


def field_errors(response):
    assert response.status_code == 400, response.content[:500]
    body = response.json()
    assert body["success"] is False
    return body["error"]["fields"]


def client_of(user):
    client = APIClient()
    _, token = get_token_model().objects.create(user)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def rep(name):
    user = UserFactory(username=name)
    user.groups.add(Group.objects.get(name="Sales rep"))
    return user


def make(resource, **kwargs):
    factory = {"customers": CustomerFactory, "companies": CompanyFactory, "opportunities": OpportunityFactory}
    return factory[resource](**kwargs)


def tagged(resource, names, **kwargs):
    record = make(resource, **kwargs)
    record.tags = names
    record.save()
    return record


# -- the rules ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "name", "key"),
    [
        ("VIP", "VIP", "vip"),
        ("  key   account ", "key account", "key account"),
        ("ＶＩＰ", "VIP", "vip"),  # full-width forms folded (NFKC)
        ("重点客户", "重点客户", "重点客户"),
        ("Straße", "Straße", "strasse"),
    ],
)
def test_names_are_cleaned_and_keyed_ignoring_case_and_width(given, name, key):
    assert tags.clean_name(given) == name
    assert tags.name_key(given) == key


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("", "blank"),
        ("   ", "blank"),
        ("a\x00b", "control characters"),
        ("a,b", "commas"),
        ("x" * 51, "at most 50"),
        (5, "string"),
    ],
)
def test_bad_names_are_refused(given, message):
    with pytest.raises(tags.TagNameError, match=message):
        tags.clean_name(given)


def test_one_tag_per_name_whatever_the_case_or_width():
    first = tagged("customers", ["VIP", " vip ", "ＶＩＰ", "hot"])
    assert first.tags == ["hot", "VIP"]
    second = tagged("companies", ["Vip"])
    assert second.tags == ["VIP"]
    assert sorted(Tag.objects.values_list("name", flat=True)) == ["VIP", "hot"]
    assert set(first.tag_set.values_list("name", flat=True)) == {"hot", "VIP"}
    assert list(second.tag_set.values_list("name", flat=True)) == ["VIP"]


# -- the API -----------------------------------------------------------------


def body_for(resource, world=None):
    if resource == "opportunities":
        return {"customer_id": CustomerFactory().pk, "title": "Deal"}
    return {"name": "New"}


@pytest.mark.parametrize("resource", RESOURCES)
def test_tags_are_written_and_read_as_names_creating_unknown_ones(api, resource):
    Tag.objects.create(name="VIP", colour="#ff0000")
    created = data_of(
        api.post(f"/api/{resource}", {**body_for(resource), "tags": ["vip", "Hot lead", "hot LEAD"]}, format="json"),
        201,
    )
    assert created["tags"] == ["Hot lead", "VIP"]
    assert Tag.objects.count() == 2
    record = RESOURCES[resource].objects.get(pk=created["id"])
    assert sorted(record.tag_set.values_list("name", flat=True)) == ["Hot lead", "VIP"]
    assert data_of(api.get(f"/api/{resource}/{record.pk}"))["tags"] == ["Hot lead", "VIP"]
    listed = data_of(api.get(f"/api/{resource}"))
    assert [row["tags"] for row in listed if row["id"] == record.pk] == [["Hot lead", "VIP"]]
    cleared = data_of(api.patch(f"/api/{resource}/{record.pk}", {"tags": []}, format="json"))
    assert cleared["tags"] == [] and not record.tag_set.exists()


@pytest.mark.parametrize("resource", RESOURCES)
@pytest.mark.parametrize(
    "value",
    ["vip", {"a": 1}, None, [1], [None], [""], ["  "], ["a\x00"], ["x" * 51], ["a,b"], [f"t{i}" for i in range(21)]],
    ids=["string", "object", "null", "number", "null-item", "empty", "spaces", "nul", "long", "comma", "too-many"],
)
def test_bad_tags_are_a_400_on_tags(api, resource, value):
    record = make(resource)
    assert "tags" in field_errors(api.patch(f"/api/{resource}/{record.pk}", {"tags": value}, format="json"))
    assert "tags" in field_errors(api.post(f"/api/{resource}", {**body_for(resource), "tags": value}, format="json"))
    assert not Tag.objects.exists()


@pytest.mark.parametrize("resource", RESOURCES)
def test_a_change_of_tags_is_in_the_history_and_the_update_event(api, resource):
    record = make(resource)
    data_of(api.patch(f"/api/{resource}/{record.pk}", {"tags": ["b", "A"]}, format="json"))
    latest = record.history.order_by("-history_id").first()
    assert latest.history_type == "~" and latest.tags == ["A", "b"]
    event = Event.objects.filter(object_id=record.pk, type__endswith=".updated").latest("id")
    assert event.changes["tags"] == {"old": [], "new": ["A", "b"]}
    assert event.data["tags"] == ["A", "b"]
    history = data_of(api.get(f"/api/{resource}/{record.pk}/history"))
    assert {"field": "tags", "old": [], "new": ["A", "b"]} in history[0]["changes"]
    # The same tags in another case and order change nothing: no entry, no event.
    entries, events = record.history.count(), Event.objects.count()
    data_of(api.patch(f"/api/{resource}/{record.pk}", {"tags": ["a", "B"]}, format="json"))
    assert (record.history.count(), Event.objects.count()) == (entries, events)


def test_a_created_record_has_its_tags_in_the_created_event(api):
    created = data_of(api.post("/api/customers", {"name": "N", "tags": ["vip"]}, format="json"), 201)
    event = Event.objects.get(type="customer.created", object_id=created["id"])
    assert event.data["tags"] == ["vip"] and event.changes["tags"] == {"old": None, "new": ["vip"]}


def test_batch_items_carry_tags(api):
    response = api.post(
        "/api/customers/batch", {"create": [{"name": "A", "tags": ["x"]}, {"name": "B", "tags": "x"}]}, format="json"
    )
    assert response.status_code == 207
    assert list(Customer.objects.values_list("tags", flat=True)) == [["x"]]


# -- filters -----------------------------------------------------------------


@pytest.fixture
def book():
    """Records of each kind: one tagged a and b, one a, one b, one untagged."""
    made = {}
    for resource in RESOURCES:
        made[resource] = {
            "ab": tagged(resource, ["a", "b"]),
            "a": tagged(resource, ["A"]),
            "b": tagged(resource, ["b"]),
            "none": make(resource),
        }
    return made


def ids(api, resource, params):
    return {row["id"] for row in data_of(api.get(f"/api/{resource}", {"page_size": 500, **params}))}


@pytest.mark.parametrize("resource", RESOURCES)
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("tag=a", {"ab", "a"}),
        ("tag=A&tag=b", {"ab"}),
        ("tag=a,b", {"ab"}),
        ("tag=%EF%BC%A1", {"ab", "a"}),  # ?tag=Ａ (full width)
        ("tag_any=a,b", {"ab", "a", "b"}),
        ("tag_any=a&tag_any=B", {"ab", "a", "b"}),
        ("tag_any=b,nosuchtag", {"ab", "b"}),
        ("tag=nosuchtag", set()),
        ("tag=a&tag=nosuchtag", set()),
        ("tag_any=nosuchtag", set()),
        ("tag=&tag_any=", {"ab", "a", "b", "none"}),
        ("tag=a&tag_any=b", {"ab"}),
    ],
)
def test_tag_filters(api, book, resource, query, expected):
    response = api.get(f"/api/{resource}?{query}&page_size=500")
    found = {row["id"] for row in data_of(response)}
    everything = {record.pk for record in RESOURCES[resource].objects.all()}
    assert found == {book[resource][key].pk for key in expected} | (
        everything - {r.pk for r in book[resource].values()} if expected >= {"none"} else set()
    )


@pytest.mark.parametrize("resource", RESOURCES)
@pytest.mark.parametrize(
    "query",
    ["tag=a%00", "tag_any=" + "x" * 51, "tag=" + ",".join(f"t{i}" for i in range(21)), "tag_any=%00"],
    ids=["nul", "long", "too-many", "nul-any"],
)
def test_malformed_tag_filters_are_a_400(api, resource, query):
    response = api.get(f"/api/{resource}?{query}")
    errors = field_errors(response)
    assert set(errors) & {"tag", "tag_any"}


def test_tag_filters_export_the_same_rows(api, book):
    response = api.get("/api/customers/export", {"tag": "a"})
    lines = b"".join(response.streaming_content).decode("utf-8-sig").splitlines()
    assert lines[0].endswith(",tags")
    assert sorted(line.split(",")[0] for line in lines[1:]) == sorted(
        str(book["customers"][key].pk) for key in ("ab", "a")
    )
    assert any(line.endswith('"A, b"') or line.endswith('"a, b"') for line in lines[1:])


# -- /api/tags -----------------------------------------------------------------


def test_tag_list_counts_only_the_records_the_user_sees(api):
    rep_a, rep_b = rep("rep_a"), rep("rep_b")
    customer_a = tagged("customers", ["vip"], owner=rep_a)
    tagged("customers", ["vip"], owner=rep_b)
    tagged("customers", ["vip"], owner=None)
    tagged("companies", ["vip"], owner=rep_a)
    tagged("opportunities", ["vip"], customer=customer_a)
    tagged("opportunities", ["vip", "other"], customer=CustomerFactory(owner=rep_b))

    def counts(client):
        return {row["name"]: row["counts"] for row in data_of(client.get("/api/tags"))}

    assert counts(api) == {
        "vip": {"customers": 3, "companies": 1, "opportunities": 2},
        "other": {"customers": 0, "companies": 0, "opportunities": 1},
    }
    assert counts(client_of(rep_a)) == {
        "vip": {"customers": 1, "companies": 1, "opportunities": 1},
        "other": {"customers": 0, "companies": 0, "opportunities": 0},
    }
    vip = Tag.objects.get(name="vip")
    assert data_of(client_of(rep_b).get(f"/api/tags/{vip.pk}"))["counts"] == {
        "customers": 1,
        "companies": 0,
        "opportunities": 1,
    }


def test_tag_list_is_paged_and_searched(api):
    for name in ("Alpha", "alphabet", "Beta", "重点客户"):
        Tag.objects.create(name=name)
    page = api.get("/api/tags", {"page_size": 2}).json()
    assert page["success"] is True and len(page["data"]) == 2 and page["meta"]["count"] == 4
    assert {row["name"] for row in data_of(api.get("/api/tags", {"search": "ALPHA"}))} == {"Alpha", "alphabet"}
    assert [row["name"] for row in data_of(api.get("/api/tags", {"search": "重点"}))] == ["重点客户"]
    assert [row["name"] for row in data_of(api.get("/api/tags", {"ordering": "name"}))][:2] == ["Alpha", "Beta"]
    assert "search" in field_errors(api.get("/api/tags", {"search": "a\x00"}))


def test_managers_create_rename_recolour_and_delete_tags(api):
    created = data_of(api.post("/api/tags", {"name": " Key  account ", "colour": "#AABBCC"}, format="json"), 201)
    assert (created["name"], created["colour"]) == ("Key account", "#aabbcc")
    assert created["counts"] == {"customers": 0, "companies": 0, "opportunities": 0}
    assert "name" in field_errors(api.post("/api/tags", {"name": "KEY ACCOUNT"}, format="json"))
    assert "colour" in field_errors(api.post("/api/tags", {"name": "x", "colour": "red"}, format="json"))
    # JSON of the wrong type is refused, not turned into text ("-30").
    assert "name" in field_errors(api.post("/api/tags", {"name": -30}, format="json"))
    assert "colour" in field_errors(api.post("/api/tags", {"name": "y", "colour": 123456}, format="json"))
    assert "name" in field_errors(api.post("/api/tags", {"name": "a\x00"}, format="json"))

    customer = tagged("customers", ["key account", "other"])
    opportunity = tagged("opportunities", ["Key account"])
    tag = Tag.objects.get(pk=created["id"])
    renamed = data_of(api.patch(f"/api/tags/{tag.pk}", {"name": "Strategic"}, format="json"))
    assert renamed["name"] == "Strategic" and renamed["counts"]["customers"] == 1
    customer.refresh_from_db()
    opportunity.refresh_from_db()
    assert (customer.tags, opportunity.tags) == (["other", "Strategic"], ["Strategic"])
    # The records' history and events tell of the new name.
    assert customer.history.order_by("-history_id").first().tags == ["other", "Strategic"]
    event = Event.objects.filter(type="customer.updated", object_id=customer.pk).latest("id")
    assert event.changes["tags"] == {"old": ["Key account", "other"], "new": ["other", "Strategic"]}
    assert tag.history.count() == 2

    assert data_of(api.patch(f"/api/tags/{tag.pk}", {"colour": ""}, format="json"))["colour"] == ""
    deleted = api.delete(f"/api/tags/{tag.pk}").json()
    assert deleted["data"]["unlinked"] == {"customers": 1, "companies": 0, "opportunities": 1}
    customer.refresh_from_db()
    assert customer.tags == ["other"] and list(customer.tag_set.values_list("name", flat=True)) == ["other"]
    assert Event.objects.filter(type="opportunity.updated", object_id=opportunity.pk).latest("id").data["tags"] == []


def test_reps_read_tags_but_do_not_write_them():
    client = client_of(rep("rep_a"))
    tag = Tag.objects.create(name="vip")
    assert data_of(client.get("/api/tags"))[0]["name"] == "vip"
    for response in (
        client.post("/api/tags", {"name": "x"}, format="json"),
        client.patch(f"/api/tags/{tag.pk}", {"name": "y"}, format="json"),
        client.delete(f"/api/tags/{tag.pk}"),
    ):
        assert response.status_code == 403 and response.json()["success"] is False
    # Tagging their own record creates the tag.
    created = data_of(client.post("/api/customers", {"name": "Mine", "tags": ["new one"]}, format="json"), 201)
    assert created["tags"] == ["new one"] and Tag.objects.filter(name="new one").exists()


# -- query counts ----------------------------------------------------------------


def queries(client, path, params):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, params)
    assert response.status_code == 200, response.content
    return len(captured)


@pytest.mark.parametrize("resource", RESOURCES)
@pytest.mark.parametrize("params", [{}, {"tag": "a"}, {"tag_any": "a,b"}, {"tag": ["a", "b"]}])
def test_list_queries_do_not_grow_with_tagged_rows(api, resource, params):
    for _ in range(2):
        tagged(resource, ["a", "b", "c"])
    small = queries(api, f"/api/{resource}", {"page_size": 1, **params})
    for _ in range(5):
        tagged(resource, ["a", "b", "d", "e"])
    assert queries(api, f"/api/{resource}", {"page_size": 1, **params}) == small


def test_tag_list_queries_do_not_grow(api):
    tagged("customers", ["a", "b", "c"])
    small = queries(api, "/api/tags", {"page_size": 2})
    for index in range(6):
        tagged("customers", [f"t{index}", "a"])
        tagged("opportunities", [f"t{index}"])
    assert queries(api, "/api/tags", {"page_size": 2}) == small


# -- imports and exports ---------------------------------------------------------


def test_import_commands_read_a_tags_column_in_english_or_chinese(tmp_path, capsys):
    from django.core.management import CommandError, call_command

    customers = tmp_path / "customers.csv"
    customers.write_bytes('name,email,标签\nLi,li@example.com,"VIP, 重点客户"\n'.encode("gb18030"))
    call_command("import_customers", str(customers))
    li = Customer.objects.get(email="li@example.com")
    assert li.tags == ["VIP", "重点客户"] and li.tag_set.count() == 2
    assert li.history.get().tags == ["VIP", "重点客户"]

    companies = tmp_path / "companies.csv"
    companies.write_text('name,domain,tags\nAcme,acme.com,vip\nBad,bad.com,"' + "x" * 60 + '"\n', encoding="utf-8")
    with pytest.raises(CommandError, match="1 row was rejected"):
        call_command("import_companies", str(companies))
    assert Company.objects.get(domain="acme.com").tags == ["VIP"]
    assert not Company.objects.filter(domain="bad.com").exists()
    assert "tags: Tag names may have at most 50 characters" in capsys.readouterr().err


def test_export_then_import_round_trip(api, tmp_path):
    tagged("customers", ["b", "A"], name="Round", email="round@example.com")
    response = api.get("/api/customers/export")
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    Customer.objects.all().delete()
    Tag.objects.all().delete()
    path = tmp_path / "export.csv"
    path.write_text(text, encoding="utf-8")
    from django.core.management import call_command

    call_command("import_customers", str(path))
    assert Customer.objects.get(email="round@example.com").tags == ["A", "b"]
    xlsx = api.get("/api/companies/export", {"format": "xlsx"})
    assert xlsx.status_code == 200


def test_xlsx_export_writes_tags_as_text(api):
    import io

    from openpyxl import load_workbook

    tagged("opportunities", ["won back", "Hot"])
    response = api.get("/api/opportunities/export", {"format": "xlsx"})
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    rows = list(sheet.values)
    column = rows[0].index("tags")
    assert rows[1][column] == "Hot, won back"


def test_deleting_a_customer_takes_its_tagged_opportunities_links_with_them(api):
    customer = tagged("customers", ["vip"])
    deal = tagged("opportunities", ["vip", "hot"], customer=customer)
    data_of(api.delete(f"/api/customers/{customer.pk}"))
    assert not Opportunity.objects.filter(pk=deal.pk).exists()
    assert not Opportunity.tag_set.through.objects.exists() and not Customer.tag_set.through.objects.exists()
    assert {row["name"]: row["counts"]["opportunities"] for row in data_of(api.get("/api/tags"))} == {
        "vip": 0,
        "hot": 0,
    }
    assert deal.history.latest("history_id").history_type == "-"


def _while_a_record_is_being_retagged(change, record_pk, names):
    """Run ``change()`` while another transaction holds the record ``record_pk`` locked, writing its tags
    as ``names``; ``change`` is let go on only once it waits for that lock. Returns the errors of both."""

    def retag():
        record = Customer.objects.select_for_update().get(pk=record_pk)
        record.tags = names
        record.save()

    return in_turn(retag, change)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="two connections at once: PostgreSQL")
@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda tag, record: tags.save_tag(tag, name="Key account"), ["Key account", "new"]),
        (lambda tag, record: tags.delete_tag(tag), ["new"]),
        (lambda tag, record: tags.add_tag([record], Tag.objects.get(name="other")), ["new", "other", "vip"]),
    ],
    ids=["rename", "delete", "add"],
)
def test_a_tag_changed_on_records_keeps_a_concurrent_change_of_their_tags(change, expected):
    customer = CustomerFactory(tags=["vip"])
    tag = Tag.objects.get(name="vip")
    Tag.objects.create(name="other")

    errors = _while_a_record_is_being_retagged(lambda: change(tag, customer), customer.pk, ["vip", "new"])

    assert not errors
    customer = Customer.objects.get(pk=customer.pk)
    assert customer.tags == expected
    assert sorted(customer.tag_set.values_list("name", flat=True), key=str.casefold) == expected


# -- a tag renamed or deleted while records are being tagged with it ------------------------------------

ON_POSTGRESQL = pytest.mark.skipif(connection.vendor != "postgresql", reason="two connections at once: PostgreSQL")


def _tag_new_customer(tag):
    CustomerFactory(name="Tagged", tags=[tag.name])


def _tag_customer(tag):
    customer = Customer.objects.get(name="Tagged")
    customer.tags = [*customer.tags, tag.name]
    customer.save()


def _add_tag_to_customer(tag):
    tags.add_tag([Customer.objects.get(name="Tagged")], tag)


def _tag_customer_through_the_api(client):
    def tag_it(tag):
        customer = Customer.objects.get(name="Tagged")
        response = client.patch(f"/api/customers/{customer.pk}", {"tags": [*customer.tags, tag.name]}, format="json")
        assert response.status_code == 200, response.content[:500]

    return tag_it


TAGGINGS = {
    "new record": _tag_new_customer,
    "record saved": _tag_customer,
    "add a tag action": _add_tag_to_customer,
}


def _vip_and_tagging(api, tagging):
    """The tag "vip"; the customer "Tagged" (tagged "other"), unless the tagging creates it; the tagging."""
    tag = Tag.objects.create(name="vip")
    if tagging != "new record":
        CustomerFactory(name="Tagged", tags=["other"])
    return tag, {**TAGGINGS, "api": _tag_customer_through_the_api(api)}[tagging]


def _assert_tagged(tagging, *names):
    """The customer "Tagged" carries ``names`` (and "other", unless the tagging created it), in its names
    and in its links."""
    expected = sorted([*names, *([] if tagging == "new record" else ["other"])], key=str.casefold)
    customer = Customer.objects.get(name="Tagged")
    assert customer.tags == expected
    assert sorted(customer.tag_set.values_list("name", flat=True), key=str.casefold) == expected


@ON_POSTGRESQL
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("tagging", [*TAGGINGS, "api"])
@pytest.mark.parametrize("first", ["rename", "tagging"])
@pytest.mark.parametrize("new_name", ["Key account", "VIP"])
def test_a_record_tagged_while_its_tag_is_renamed_carries_the_new_name(api, tagging, first, new_name):
    # The tag is read by the tagging before the rename commits (the rename first), or held by it (the
    # tagging first): either way the record ends with the new name, in its names and its links. A
    # rename that changes only the case keeps the tag's key, yet waits the same.
    tag, tag_it = _vip_and_tagging(api, tagging)
    steps = {
        "rename": lambda: tags.save_tag(Tag.objects.get(pk=tag.pk), name=new_name),
        "tagging": lambda: tag_it(tag),
    }

    errors = in_turn(steps[first], steps["tagging" if first == "rename" else "rename"])

    assert not errors
    _assert_tagged(tagging, new_name)
    assert Tag.objects.get(pk=tag.pk).name == new_name
    assert not Tag.objects.filter(key="vip").exclude(pk=tag.pk).exists()


@ON_POSTGRESQL
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("tagging", [*TAGGINGS, "api"])
def test_a_record_tagged_while_its_tag_is_deleted_gets_the_tag_made_again(api, tagging):
    # As tagging with a name no tag has: no foreign-key error at commit (a 500), no name without a tag.
    tag, tag_it = _vip_and_tagging(api, tagging)

    errors = in_turn(lambda: tags.delete_tag(Tag.objects.get(pk=tag.pk)), lambda: tag_it(tag))

    assert not errors
    _assert_tagged(tagging, "vip")
    assert Tag.objects.get(key="vip").pk != tag.pk


@ON_POSTGRESQL
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("tagging", [*TAGGINGS, "api"])
def test_a_tag_deleted_while_a_record_is_being_tagged_with_it_is_taken_off_that_record_too(api, tagging):
    tag, tag_it = _vip_and_tagging(api, tagging)

    errors = in_turn(lambda: tag_it(tag), lambda: tags.delete_tag(Tag.objects.get(pk=tag.pk)))

    assert not errors
    _assert_tagged(tagging)
    assert not Tag.objects.filter(key="vip").exists()


@ON_POSTGRESQL
@pytest.mark.django_db(transaction=True)
def test_a_merge_and_a_rename_of_a_tag_the_merged_record_carries_do_not_deadlock(manager):
    # The merge locks the records (the survivor held by another transaction first), the rename its tag
    # then waits for the merged record, and the merge then links that tag to the survivor: it must
    # hold the tag before the records, as the rename does, or the two wait for each other.
    merged = CustomerFactory(name="Merged", tags=["vip"])
    survivor = CustomerFactory(name="Survivor", tags=["other"])
    tag = Tag.objects.get(key="vip")

    errors = in_turn(
        lambda: Customer.objects.select_for_update().get(pk=survivor.pk),
        lambda: merge_customers(survivor.pk, [merged.pk], user=manager),
        lambda: tags.save_tag(Tag.objects.get(pk=tag.pk), name="Key account"),
    )

    assert not errors
    survivor = Customer.objects.get(pk=survivor.pk)
    assert survivor.tags == ["Key account", "other"]
    assert sorted(survivor.tag_set.values_list("name", flat=True)) == ["Key account", "other"]


@ON_POSTGRESQL
@pytest.mark.django_db(transaction=True)
def test_a_batch_and_a_rename_of_a_tag_one_of_its_records_carries_do_not_deadlock(manager):
    # The batch locks the first record (carrying "vip"), then waits for the second (held by another
    # transaction first); the rename holds "vip" and waits for the first record; the batch then links
    # "vip" to the second: it must hold the tags it may link before any record, or the two deadlock.
    carrier = CustomerFactory(name="Carrier", tags=["vip"])
    other = CustomerFactory(name="Other")
    tag = Tag.objects.get(key="vip")
    answers = []
    body = {"update": [{"id": carrier.pk, "name": "Carrier 2"}, {"id": other.pk, "tags": ["vip"]}]}

    errors = in_turn(
        lambda: Customer.objects.select_for_update().get(pk=other.pk),
        lambda: answers.append(client_of(manager).post("/api/customers/batch", body, format="json")),
        lambda: tags.save_tag(Tag.objects.get(pk=tag.pk), name="Key account"),
    )

    assert not errors
    assert answers[0].status_code == 200, answers[0].content[:500]
    assert Customer.objects.get(pk=carrier.pk).tags == ["Key account"]
    other = Customer.objects.get(pk=other.pk)
    assert other.tags == ["Key account"]
    assert list(other.tag_set.values_list("name", flat=True)) == ["Key account"]


@ON_POSTGRESQL
@pytest.mark.django_db(transaction=True)
def test_an_import_command_and_a_rename_of_a_tag_one_of_its_records_carries_do_not_deadlock(tmp_path):
    # As a batch: the import (one transaction) writes the first row's record (carrying "vip"), then
    # waits for the second's; the rename holds "vip" and waits for the first record; the import then
    # links "vip" to the second record.
    from django.core.management import call_command

    CustomerFactory(name="Carrier", email="carrier@example.com", tags=["vip"])
    other = CustomerFactory(name="Other", email="other@example.com")
    tag = Tag.objects.get(key="vip")
    path = tmp_path / "customers.csv"
    path.write_text("name,email,tags\nCarrier 2,carrier@example.com,\nOther,other@example.com,vip\n", encoding="utf-8")

    errors = in_turn(
        lambda: Customer.objects.select_for_update().get(pk=other.pk),
        lambda: call_command("import_customers", str(path), "--update-existing"),
        lambda: tags.save_tag(Tag.objects.get(pk=tag.pk), name="Key account"),
    )

    assert not errors
    assert Customer.objects.get(email="carrier@example.com").tags == ["Key account"]
    other = Customer.objects.get(pk=other.pk)
    assert other.tags == ["Key account"]
    assert list(other.tag_set.values_list("name", flat=True)) == ["Key account"]


@ON_POSTGRESQL
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("write", ["create", "rename"])
def test_a_tag_name_taken_between_the_check_and_the_save_is_a_400_on_name(manager, write):
    # The other transaction creates "Strategic" after the serializer found the name free; the save waits
    # for it on the unique key, then is refused: the usual 400 on name, and nothing written.
    tag = Tag.objects.create(name="vip")
    client = client_of(manager)
    answers = []

    def post():
        if write == "create":
            answers.append(client.post("/api/tags", {"name": "strategic"}, format="json"))
        else:
            answers.append(client.patch(f"/api/tags/{tag.pk}", {"name": "strategic"}, format="json"))

    errors = in_turn(lambda: Tag.objects.create(name="Strategic"), post)

    assert not errors
    assert field_errors(answers[0]) == {"name": ["A tag with this name already exists."]}
    assert sorted(Tag.objects.values_list("name", flat=True)) == ["Strategic", "vip"]


@ON_POSTGRESQL
@pytest.mark.django_db(transaction=True)
def test_a_batch_aborted_in_a_deadlock_is_a_409_with_nothing_written(manager):
    # Should a batch still meet a deadlock (here with a transaction locking its two records the other
    # way round), it is answered 409 in the envelope, not 500, and nothing of it is written.
    first, second = CustomerFactory(name="First"), CustomerFactory(name="Second")
    body = {"update": [{"id": first.pk, "name": "First 2"}, {"id": second.pk, "name": "Second 2"}]}

    answer, errors = deadlocked(
        first, second, lambda: client_of(manager).post("/api/customers/batch", body, format="json")
    )

    assert not errors
    assert answer.status_code == 409, answer
    assert answer.json()["error"]["code"] == "conflict"
    assert sorted(Customer.objects.values_list("name", flat=True)) == ["First", "Second"]


@ON_POSTGRESQL
@pytest.mark.django_db(transaction=True)
def test_an_import_command_aborted_in_a_deadlock_says_so_with_nothing_written(tmp_path):
    from django.core.management import CommandError, call_command

    first = CustomerFactory(name="First", email="first@example.com")
    second = CustomerFactory(name="Second", email="second@example.com")
    path = tmp_path / "customers.csv"
    path.write_text("name,email\nFirst 2,first@example.com\nSecond 2,second@example.com\n", encoding="utf-8")

    outcome, errors = deadlocked(
        first, second, lambda: call_command("import_customers", str(path), "--update-existing")
    )

    assert not errors
    assert isinstance(outcome, CommandError), outcome
    assert "nothing was written" in str(outcome)
    assert sorted(Customer.objects.values_list("name", flat=True)) == ["First", "Second"]
