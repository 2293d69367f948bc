"""The original README's "complete sales flow", request for request."""

from customers.models import Customer
from opportunities.models import Opportunity


def test_original_sales_flow(api):
    customer = api.post(
        "/api/customers", {"name": "张三", "company": "ABC科技", "email": "zhangsan@abc.com"}, format="json"
    )
    assert customer.status_code == 201
    customer_id = customer.json()["data"]["id"]

    opportunity = api.post(
        "/api/opportunities",
        {"customer_id": customer_id, "title": "ERP系统", "value": 500000, "stage": "lead"},
        format="json",
    )
    assert opportunity.status_code == 201
    opportunity_id = opportunity.json()["data"]["id"]

    call = api.post(
        "/api/interactions",
        {"customer_id": customer_id, "interaction_type": "call", "notes": "了解客户需求"},
        format="json",
    )
    assert call.status_code == 201

    moved = api.put(f"/api/opportunities/{opportunity_id}", {"stage": "proposal", "probability": 60}, format="json")
    assert moved.status_code == 200
    assert moved.json()["data"] == {
        **opportunity.json()["data"],
        "stage": "proposal",
        "probability": 60,
        "updated_at": moved.json()["data"]["updated_at"],
    }

    for term in ["张三", "ABC", "zhangsan@abc.com"]:
        found = api.get("/api/customers", {"search": term}).json()["data"]
        assert [row["id"] for row in found] == [customer_id], term

    interactions = api.get("/api/interactions", {"customer_id": customer_id}).json()["data"]
    assert [row["notes"] for row in interactions] == ["了解客户需求"]
    opportunities = api.get("/api/opportunities", {"customer_id": customer_id}).json()["data"]
    assert [(row["title"], row["value"], row["stage"]) for row in opportunities] == [("ERP系统", 500000.0, "proposal")]

    deleted = api.delete(f"/api/customers/{customer_id}").json()
    assert deleted["data"]["deleted"] == {"customers": 1, "interactions": 1, "opportunities": 1, "tasks": 0}
    assert not Customer.objects.exists()
    assert not Opportunity.objects.exists()
