import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.urls import reverse
from knox.models import get_token_model
from rest_framework.test import APIClient

from duplicates import services
from duplicates.models import DuplicateCandidate, Kind
from tests.concurrency import in_turn
from tests.core.admin.helpers import staff
from tests.factories import CompanyFactory, CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db


def client_of(user):
    client = APIClient()
    _, token = get_token_model().objects.create(user)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def user_in(group, username):
    user = UserFactory(username=username)
    user.groups.add(Group.objects.get(name=group))
    return user


def test_creating_a_probable_duplicate_answers_with_the_hint(api):
    company = CompanyFactory(name="Acme")
    original = CustomerFactory(name="John Smith", company=company, phone="")
    response = api.post("/api/customers", {"name": "Jon Smith", "company": "ACME"}, format="json")
    assert response.status_code == 201
    data = response.json()["data"]
    assert data["company_id"] == company.pk
    assert data["duplicates"] == [
        {"id": original.pk, "score": pytest.approx(0.93, abs=0.02), "reasons": ["similar_name_same_company"]}
    ]
    # The pair is in the review list at once.
    listed = api.get("/api/duplicates", {"kind": "customer", "record_id": data["id"]}).json()["data"]
    assert [(row["a_id"], row["b_id"], row["status"]) for row in listed] == [(original.pk, data["id"], "open")]
    # The hint belongs to the create's answer: the record's own ETag and reads know nothing of it.
    read = api.get(f"/api/customers/{data['id']}")
    assert "duplicates" not in read.json()["data"]
    assert read["ETag"] == response["ETag"]


def test_creating_a_record_like_no_other_has_no_hint(api):
    CustomerFactory(name="John Smith", phone="")
    response = api.post("/api/customers", {"name": "Mary Jones", "phone": "13800138001"}, format="json")
    assert response.status_code == 201
    assert response.json()["data"]["duplicates"] == []


def test_the_same_phone_written_otherwise_is_a_hint(api):
    original = CustomerFactory(name="王小明", phone="+8613912345678", email=None)
    response = api.post("/api/customers", {"name": "王 小明", "phone": "+86 139-1234-5678"}, format="json")
    hint = response.json()["data"]["duplicates"]
    assert [(row["id"], row["reasons"]) for row in hint] == [(original.pk, ["same_phone"])]
    assert hint[0]["score"] == 1.0


def test_a_rep_is_not_told_of_another_reps_records():
    rep_a, rep_b = user_in("Sales rep", "rep_a"), user_in("Sales rep", "rep_b")
    theirs = CustomerFactory(name="Li Lei", phone="+8613912345678", owner=rep_b)
    response = client_of(rep_a).post("/api/customers", {"name": "Li Lei", "phone": "+86 13912345678"}, format="json")
    assert response.status_code == 201
    assert response.json()["data"]["duplicates"] == []
    # Managers see the pair in the review list.
    pair = DuplicateCandidate.objects.get(kind=Kind.CUSTOMER)
    assert (pair.a_id, pair.b_id) == (theirs.pk, response.json()["data"]["id"])
    assert client_of(rep_a).get("/api/duplicates").json()["data"] == []
    assert client_of(rep_b).get("/api/duplicates").json()["data"] == []


def test_creating_a_company_with_a_known_domain_answers_with_the_hint(api):
    listed = CompanyFactory(name="Initrode", domain="initrode.example")
    known = CompanyFactory(name="Initech", website="https://www.initech.example/")
    # A domain column is found at once; a website's domain once the rebuild has keyed it.
    response = api.post(
        "/api/companies", {"name": "Initrode Software", "website": "https://initrode.example/"}, format="json"
    )
    assert [row["id"] for row in response.json()["data"]["duplicates"]] == [listed.pk]
    services.rebuild(Kind.COMPANY)
    response = api.post("/api/companies", {"name": "Initech Software", "domain": "initech.example"}, format="json")
    assert response.status_code == 201
    assert response.json()["data"]["duplicates"] == [
        {"id": known.pk, "score": pytest.approx(0.9, abs=0.05), "reasons": ["same_domain"]}
    ]


def test_a_batch_create_is_checked_at_the_next_rebuild(api):
    CustomerFactory(name="John Smith", phone="+8613912345678")
    response = api.post(
        "/api/customers/batch", {"create": [{"name": "John Smith", "phone": "+86 13912345678"}]}, format="json"
    )
    assert response.status_code == 200
    assert not DuplicateCandidate.objects.exists()
    services.rebuild(Kind.CUSTOMER)
    assert DuplicateCandidate.objects.count() == 1


def test_dismissed_pairs_stay_dismissed(api, user):
    a = CustomerFactory(name="John Smith", phone="+8613912345678")
    b = CustomerFactory(name="John Smith", phone="+8613912345678", email=None)
    services.rebuild(Kind.CUSTOMER)
    pair = DuplicateCandidate.objects.get()
    response = api.post(f"/api/duplicates/{pair.pk}/dismiss")
    assert response.status_code == 200
    data = response.json()["data"]
    assert (data["status"], data["decided_by_id"]) == ("not_duplicate", user.pk)
    services.rebuild(Kind.CUSTOMER)
    pair.refresh_from_db()
    assert (pair.a_id, pair.b_id, pair.status) == (a.pk, b.pk, DuplicateCandidate.Status.NOT_DUPLICATE)
    assert api.get("/api/duplicates", {"status": "open"}).json()["data"] == []
    # Creating the same person again offers the pairs with the new record only.
    again = api.post("/api/customers", {"name": "John Smith", "phone": "+86 13912345678"}, format="json")
    assert {row["id"] for row in again.json()["data"]["duplicates"]} == {a.pk, b.pk}


def test_a_merged_pair_cannot_be_dismissed(api):
    a, b = CustomerFactory(), CustomerFactory()
    pair = DuplicateCandidate.objects.create(
        kind=Kind.CUSTOMER, a_id=a.pk, b_id=b.pk, score=0.9, reasons=[], status=DuplicateCandidate.Status.MERGED
    )
    response = api.post(f"/api/duplicates/{pair.pk}/dismiss")
    assert response.status_code == 400
    assert response.json()["success"] is False


@pytest.mark.parametrize("value", ["x", "0", "-1"])
def test_bad_filters_are_400(api, value):
    response = api.get("/api/duplicates", {"record_id": value})
    assert response.status_code == 400
    assert response.json()["success"] is False


def test_a_reps_list_is_their_pairs_in_constant_queries(django_assert_num_queries):
    rep = user_in("Sales rep", "rep")
    client = client_of(rep)

    def add_pairs(count):
        for _n in range(count):
            a = CustomerFactory(name="Ann Lee", owner=rep, phone="")
            b = CustomerFactory(name="Ann Lee", owner=rep, phone="")
            DuplicateCandidate.objects.create(kind=Kind.CUSTOMER, a_id=a.pk, b_id=b.pk, score=0.9, reasons=["x"])

    add_pairs(2)
    client.get("/api/duplicates")  # warm the role and token caches
    # The token with its user and role, then the page: no count, no query per pair.
    with django_assert_num_queries(2) as first:
        assert len(client.get("/api/duplicates").json()["data"]) == 2
    add_pairs(5)
    with django_assert_num_queries(len(first.captured_queries)):
        assert len(client.get("/api/duplicates").json()["data"]) == 7


def _open_pair():
    a, b = CustomerFactory(name="John Smith"), CustomerFactory(name="John Smith")
    return DuplicateCandidate.objects.create(kind=Kind.CUSTOMER, a_id=a.pk, b_id=b.pk, score=0.9, reasons=[])


@pytest.mark.skipif(connection.vendor != "postgresql", reason="two connections at once: PostgreSQL")
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("meanwhile", ["merged", "deleted"])
def test_a_pair_merged_or_removed_while_it_is_dismissed_is_not_written_over(meanwhile):
    # A merge of the pair's records marks it merged, a rebuild or another merge removes it, while a dismiss
    # reads it: the dismiss waits, then answers as after that change (400 merged, 404 gone), where it wrote
    # "not a duplicate" over the merge, or failed with a server error on the pair gone.
    pair = _open_pair()
    client = client_of(user_in("Sales manager", "deciding"))
    pairs = DuplicateCandidate.objects.filter(pk=pair.pk)
    if meanwhile == "merged":
        change = lambda: pairs.update(status=DuplicateCandidate.Status.MERGED)  # noqa: E731
    else:
        change = lambda: pairs.delete()  # noqa: E731
    answers = []

    errors = in_turn(change, lambda: answers.append(client.post(f"/api/duplicates/{pair.pk}/dismiss")), atomic=False)

    assert not errors
    assert answers[0].status_code == (400 if meanwhile == "merged" else 404), answers[0].content
    assert answers[0].json()["success"] is False
    if meanwhile == "merged":
        assert pairs.get().status == DuplicateCandidate.Status.MERGED


@pytest.mark.skipif(connection.vendor != "postgresql", reason="two connections at once: PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_the_admin_action_leaves_a_pair_merged_meanwhile_merged():
    pair = _open_pair()
    _, client = staff("deciding", "Sales manager")
    pairs = DuplicateCandidate.objects.filter(pk=pair.pk)
    url = reverse("admin:duplicates_duplicatecandidate_changelist")
    post = {"action": "mark_not_duplicate", "_selected_action": [pair.pk], "index": "0"}

    errors = in_turn(
        lambda: pairs.update(status=DuplicateCandidate.Status.MERGED), lambda: client.post(url, post), atomic=False
    )

    assert not errors
    assert pairs.get().status == DuplicateCandidate.Status.MERGED
