import pytest

from core.api.pagination import EnvelopePagination
from customers.models import Customer
from tests.factories import CustomerFactory, InteractionFactory


def walk(api, path, **params):
    """Every page of a list by cursor; returns the ids in order and the pages' metas."""
    ids, metas = [], []
    response = api.get(path, params)
    while True:
        assert response.status_code == 200, response.content
        body = response.json()
        ids += [row["id"] for row in body["data"]]
        metas.append(body["meta"])
        cursor = body["meta"]["next_cursor"]
        if not cursor:
            return ids, metas
        response = api.get(path, {**params, "cursor": cursor})


def test_cursor_paging_returns_every_row_once_in_order(api, db):
    customers = CustomerFactory.create_batch(7)
    ids, metas = walk(api, "/api/customers", page_size=3)

    newest_first = sorted(customers, key=lambda c: (c.created_at, c.pk), reverse=True)
    assert ids == [c.pk for c in newest_first]
    assert len(metas) == 3
    assert metas[0]["page"] == 1
    assert "page" not in metas[1]
    assert metas[1]["cursor"] == metas[0]["next_cursor"]
    assert f"cursor={metas[1]['next_cursor']}" in metas[1]["next"]
    assert metas[-1]["next_cursor"] is None
    assert metas[-1]["next"] is None


def test_cursor_paging_is_not_disturbed_by_concurrent_inserts(api, db):
    originals = {c.pk for c in CustomerFactory.create_batch(10)}
    response = api.get("/api/customers", {"page_size": 3})
    seen = [row["id"] for row in response.json()["data"]]
    cursor = response.json()["meta"]["next_cursor"]
    inserted = set()
    while cursor:
        # Rows written between two pages (as by other users) land before the cursor.
        inserted |= {c.pk for c in CustomerFactory.create_batch(2)}
        body = api.get("/api/customers", {"page_size": 3, "cursor": cursor}).json()
        seen += [row["id"] for row in body["data"]]
        cursor = body["meta"]["next_cursor"]

    assert len(seen) == len(set(seen)), "no row twice"
    assert set(seen) == originals, "every row that existed at the start, and no row inserted later"
    assert inserted and not inserted & set(seen)


def test_cursor_paging_breaks_ties_on_equal_timestamps(api, db):
    customers = CustomerFactory.create_batch(5)
    Customer.objects.update(created_at=customers[0].created_at)

    ids, _ = walk(api, "/api/customers", page_size=2)
    assert ids == sorted((c.pk for c in customers), reverse=True)


def test_cursor_paging_filters_like_pages(api, db):
    mine = CustomerFactory()
    InteractionFactory.create_batch(5, customer=mine)
    InteractionFactory.create_batch(3)

    ids, metas = walk(api, "/api/interactions", customer_id=mine.pk, page_size=2)
    assert sorted(ids) == sorted(mine.interactions.values_list("pk", flat=True))
    assert metas[0]["count"] == 5


@pytest.mark.parametrize(
    "params, field",
    [
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "MjAyNnx4"}, "cursor"),
        ({"page": "0"}, "page"),
        ({"page": "abc"}, "page"),
        ({"page": str(10**12)}, "page"),
        ({"page_size": "-1"}, "page_size"),
    ],
)
def test_bad_paging_parameters_are_a_400_naming_the_parameter(api, db, params, field):
    response = api.get("/api/customers", params)

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_cursor_with_another_ordering_or_with_page_is_refused(api, db):
    CustomerFactory.create_batch(3)
    cursor = api.get("/api/customers", {"page_size": 1}).json()["meta"]["next_cursor"]

    for params in ({"cursor": cursor, "ordering": "name"}, {"cursor": cursor, "page": "2"}):
        response = api.get("/api/customers", params)
        assert response.status_code == 400
        assert "cursor" in response.json()["error"]["fields"]


def test_another_ordering_pages_by_number_without_a_cursor(api, db):
    CustomerFactory.create_batch(3)
    meta = api.get("/api/customers", {"ordering": "name", "page_size": 2}).json()["meta"]

    assert meta["next_cursor"] is None
    assert "page=2" in meta["next"]


def test_page_numbers_still_work_with_exact_counts(api, db):
    CustomerFactory.create_batch(5)
    body = api.get("/api/customers", {"page": 2, "page_size": 2}).json()

    assert len(body["data"]) == 2
    meta = body["meta"]
    assert (meta["count"], meta["count_capped"], meta["page"], meta["page_size"]) == (5, False, 2, 2)
    assert "page=3" in meta["next"] and meta["previous"].endswith("/api/customers?page_size=2")

    missing = api.get("/api/customers", {"page": 4, "page_size": 2})
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "Page 4 does not exist; there are 3 pages."


@pytest.mark.parametrize(
    ("language", "message"),
    [("en", "Page 3 does not exist; there is 1 page."), ("zh-hans", "第 3 页不存在；共 1 页。")],
)
def test_a_page_past_the_only_one_says_so_in_the_readers_language(api, db, language, message):
    CustomerFactory.create_batch(2)

    missing = api.get("/api/customers", {"page": 3}, HTTP_ACCEPT_LANGUAGE=language)

    assert missing.status_code == 404
    assert missing.json()["error"] == {"code": "not_found", "message": message}


def test_count_is_capped_and_says_so(api, db, monkeypatch):
    monkeypatch.setattr(EnvelopePagination, "count_cap", 4)
    CustomerFactory.create_batch(6)

    meta = api.get("/api/customers", {"page_size": 2}).json()["meta"]
    assert (meta["count"], meta["count_capped"]) == (4, True)
    # A result that fits on its first page is counted exactly, whatever the cap.
    whole = api.get("/api/customers", {"page_size": 10}).json()["meta"]
    assert (whole["count"], whole["count_capped"]) == (6, False)
