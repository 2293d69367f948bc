import pytest

from customers.models import Customer
from interactions.models import Interaction
from opportunities.models import Opportunity
from tests.factories import CustomerFactory, InteractionFactory, OpportunityFactory

URL = "/api/customers"


def error_fields(response):
    return response.json()["error"]["fields"]


class TestCreate:
    def test_create_with_only_a_name_uses_defaults(self, api):
        response = api.post(URL, {"name": "张三"}, format="json")
        assert response.status_code == 201
        data = response.json()["data"]
        assert data["name"] == "张三"
        assert data["status"] == Customer.Status.ACTIVE
        assert data["company"] is None and data["email"] is None and data["phone"] is None
        assert data["created_at"].endswith("Z") and data["updated_at"].endswith("Z")
        assert Customer.objects.get(pk=data["id"]).name == "张三"

    def test_create_returns_every_field_of_the_original_api(self, api):
        payload = {
            "name": "张三",
            "company": "测试公司",
            "email": "zhangsan@example.com",
            "phone": "13800138000",
            "status": "lead",
        }
        data = api.post(URL, payload, format="json").json()["data"]
        assert set(data) >= {"id", "name", "company", "email", "phone", "status", "created_at", "updated_at"}
        assert {key: data[key] for key in payload} == payload

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({}, "name"),
            ({"name": ""}, "name"),
            ({"name": "   "}, "name"),
            ({"name": None}, "name"),
            ({"name": "x" * 201}, "name"),
            ({"name": ["a"]}, "name"),
            ({"name": {"a": 1}}, "name"),
            ({"name": "a\x00b"}, "name"),
            ({"name": "ok", "company": "c" * 201}, "company"),
            ({"name": "ok", "company": "a\x00"}, "company"),
            ({"name": "ok", "email": "not-an-email"}, "email"),
            ({"name": "ok", "email": "a" * 250 + "@example.com"}, "email"),
            ({"name": "ok", "phone": "1" * 33}, "phone"),
            ({"name": "ok", "status": "vip"}, "status"),
            ({"name": "ok", "status": 3}, "status"),
        ],
    )
    def test_create_rejects_invalid_field(self, api, payload, field):
        response = api.post(URL, payload, format="json")
        assert response.status_code == 400
        body = response.json()
        assert body["success"] is False
        assert body["error"]["code"] == "validation_error"
        assert field in body["error"]["fields"]
        assert body["error"]["fields"][field][0]
        assert not Customer.objects.exists()

    def test_name_of_200_characters_is_accepted(self, api):
        response = api.post(URL, {"name": "名" * 200}, format="json")
        assert response.status_code == 201

    def test_email_is_unique_ignoring_case(self, api):
        CustomerFactory(email="ZhangSan@ABC.com")
        response = api.post(URL, {"name": "x", "email": "zhangsan@abc.COM"}, format="json")
        assert response.status_code == 400
        assert error_fields(response) == {"email": ["A customer with this email already exists."]}
        assert Customer.objects.count() == 1

    def test_blank_email_is_stored_as_null_and_never_clashes(self, api):
        for _ in range(2):
            assert api.post(URL, {"name": "x", "email": ""}, format="json").status_code == 201
        assert list(Customer.objects.values_list("email", flat=True)) == [None, None]

    def test_database_constraint_backs_the_email_check(self, db):
        from django.db import IntegrityError, transaction

        CustomerFactory(email="dup@example.com")
        with pytest.raises(IntegrityError), transaction.atomic():
            Customer.objects.create(name="y", email="DUP@example.com")


class TestReadUpdateDelete:
    def test_detail_returns_the_customer(self, api):
        customer = CustomerFactory(name="李四", company="华为")
        data = api.get(f"{URL}/{customer.pk}").json()["data"]
        assert data["id"] == customer.pk
        assert data["name"] == "李四"
        assert data["company"] == "华为"

    @pytest.mark.parametrize("pk", ["999", "0", "99999999999999999999999"])
    def test_unknown_id_is_404(self, api, pk):
        for method in ("get", "put", "patch", "delete"):
            response = getattr(api, method)(f"{URL}/{pk}", {"name": "x"}, format="json")
            assert response.status_code == 404, method
            assert response.json()["error"]["code"] == "not_found"

    def test_put_is_a_partial_update(self, api):
        customer = CustomerFactory(name="Old", company="Keep", email="old@example.com")
        response = api.put(f"{URL}/{customer.pk}", {"name": "新名称", "email": "newemail@example.com"}, format="json")
        assert response.status_code == 200
        data = response.json()["data"]
        assert data["name"] == "新名称"
        assert data["email"] == "newemail@example.com"
        assert data["company"] == "Keep"
        customer.refresh_from_db()
        assert (customer.name, customer.company_name) == ("新名称", "Keep")

    def test_patch_updates_and_bumps_updated_at(self, api):
        customer = CustomerFactory(status=Customer.Status.LEAD)
        before = customer.updated_at
        response = api.patch(f"{URL}/{customer.pk}", {"status": "prospect"}, format="json")
        assert response.json()["data"]["status"] == "prospect"
        customer.refresh_from_db()
        assert customer.status == Customer.Status.PROSPECT
        assert customer.updated_at > before

    def test_update_keeps_own_email_and_rejects_anothers(self, api):
        first = CustomerFactory(email="a@example.com")
        CustomerFactory(email="b@example.com")
        assert api.put(f"{URL}/{first.pk}", {"email": "A@example.com"}, format="json").status_code == 200
        clash = api.put(f"{URL}/{first.pk}", {"email": "B@EXAMPLE.com"}, format="json")
        assert clash.status_code == 400
        assert "email" in error_fields(clash)
        first.refresh_from_db()
        assert first.email == "A@example.com"

    def test_update_rejects_blank_name_and_changes_nothing(self, api):
        customer = CustomerFactory(name="Stay")
        response = api.put(f"{URL}/{customer.pk}", {"name": "", "company": "New"}, format="json")
        assert response.status_code == 400
        customer.refresh_from_db()
        assert (customer.name, customer.company_name) != ("", "New")
        assert customer.name == "Stay"

    def test_read_only_fields_are_ignored_on_update(self, api):
        customer = CustomerFactory()
        response = api.put(f"{URL}/{customer.pk}", {"id": 999, "created_at": "2000-01-01T00:00:00Z"}, format="json")
        assert response.status_code == 200
        assert response.json()["data"]["id"] == customer.pk
        assert not response.json()["data"]["created_at"].startswith("2000")

    def test_delete_cascades_and_reports_counts(self, api):
        customer = CustomerFactory()
        InteractionFactory.create_batch(3, customer=customer)
        OpportunityFactory.create_batch(2, customer=customer)
        other = InteractionFactory()
        response = api.delete(f"{URL}/{customer.pk}")
        assert response.status_code == 200
        body = response.json()
        assert body["success"] is True
        assert body["message"] == "Customer deleted."
        assert body["data"]["deleted"] == {"customers": 1, "interactions": 3, "opportunities": 2, "tasks": 0}
        assert not Customer.objects.filter(pk=customer.pk).exists()
        assert not Interaction.objects.filter(customer_id=customer.pk).exists()
        assert not Opportunity.objects.filter(customer_id=customer.pk).exists()
        assert Interaction.objects.filter(pk=other.pk).exists()
        assert api.get(f"{URL}/{customer.pk}").status_code == 404


class TestListSearchFilter:
    def test_list_is_paginated_newest_first(self, api):
        customers = CustomerFactory.create_batch(3)
        body = api.get(URL).json()
        assert body["success"] is True
        assert [row["id"] for row in body["data"]] == [c.pk for c in reversed(customers)]
        assert body["meta"] == {
            "count": 3,
            "count_capped": False,
            "page": 1,
            "page_size": 50,
            "next": None,
            "next_cursor": None,
            "previous": None,
        }

    def test_page_and_page_size(self, api):
        ids = [c.pk for c in reversed(CustomerFactory.create_batch(5))]
        first = api.get(URL, {"page_size": 2}).json()
        assert [row["id"] for row in first["data"]] == ids[:2]
        assert first["meta"]["count"] == 5
        assert first["meta"]["next"].endswith("page=2&page_size=2")
        second = api.get(URL, {"page_size": 2, "page": 2}).json()
        assert [row["id"] for row in second["data"]] == ids[2:4]
        assert second["meta"]["previous"] is not None
        last = api.get(URL, {"page_size": 2, "page": 3}).json()
        assert [row["id"] for row in last["data"]] == ids[4:]
        assert last["meta"]["next"] is None

    def test_page_size_is_capped_at_500(self, api):
        assert api.get(URL, {"page_size": 10_000}).json()["meta"]["page_size"] == 500

    @pytest.mark.parametrize(
        "params", [{"page": "abc"}, {"page": "0"}, {"page": "-1"}, {"page_size": "x"}, {"page_size": "0"}]
    )
    def test_garbage_paging_is_a_400(self, api, params):
        response = api.get(URL, params)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "validation_error"

    def test_page_past_the_end_is_a_404(self, api):
        CustomerFactory()
        assert api.get(URL, {"page": 2}).status_code == 404

    @pytest.mark.parametrize(
        ("term", "expected"),
        [
            ("张三", {"张三", "张三丰"}),
            ("武当", {"张三丰"}),
            ("张", {"张三", "张三丰"}),
            ("abc", {"张三", "Acme Zhang"}),
            ("ABC科技", {"张三"}),
            ("zhangsan@abc", {"张三"}),
            ("ZHANG", {"张三", "Acme Zhang", "张三丰"}),
            ("nobody", set()),
        ],
    )
    def test_search_matches_name_company_email_case_insensitively(self, api, term, expected):
        CustomerFactory(name="张三", company="ABC科技", email="zhangsan@abc.com")
        CustomerFactory(name="Acme Zhang", company="abc corp", email="acme@example.com")
        CustomerFactory(name="张三丰", company="武当", email="zhang3f@wudang.cn")
        CustomerFactory(name="Other", company="Else", email="other@example.com")
        data = api.get(URL, {"search": term}).json()["data"]
        assert {row["name"] for row in data} == expected

    def test_search_treats_like_wildcards_literally(self, api):
        CustomerFactory(name="100% Cotton")
        CustomerFactory(name="Plain")
        assert [r["name"] for r in api.get(URL, {"search": "%"}).json()["data"]] == ["100% Cotton"]
        assert api.get(URL, {"search": "_"}).json()["data"] == []

    def test_filter_by_status(self, api):
        CustomerFactory(status=Customer.Status.LEAD, name="L")
        CustomerFactory(status=Customer.Status.ACTIVE, name="A")
        data = api.get(URL, {"status": "lead"}).json()["data"]
        assert [row["name"] for row in data] == ["L"]

    def test_filter_by_creation_range(self, api):
        old = CustomerFactory(name="old")
        Customer.objects.filter(pk=old.pk).update(created_at="2020-01-01T00:00:00Z")
        CustomerFactory(name="new")
        data = api.get(URL, {"created_before": "2021-01-01T00:00:00Z"}).json()["data"]
        assert [row["name"] for row in data] == ["old"]
        data = api.get(URL, {"created_after": "2021-01-01T00:00:00Z"}).json()["data"]
        assert [row["name"] for row in data] == ["new"]

    @pytest.mark.parametrize(("ordering", "names"), [("name", ["a", "b", "c"]), ("-name", ["c", "b", "a"])])
    def test_ordering(self, api, ordering, names):
        for name in ["b", "c", "a"]:
            CustomerFactory(name=name)
        assert [row["name"] for row in api.get(URL, {"ordering": ordering}).json()["data"]] == names

    @pytest.mark.parametrize(
        "params",
        [
            {"status": "vip"},
            {"ordering": "password"},
            {"ordering": "name;drop table"},
            {"search": "a\x00b"},
            {"search": "x" * 201},
            {"created_after": "yesterday"},
        ],
    )
    def test_garbage_filters_are_a_400(self, api, params):
        response = api.get(URL, params)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "validation_error"
        assert set(response.json()["error"]["fields"]) == set(params)
