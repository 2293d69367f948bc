"""A batch is one changeset: named in the answer, undoable; ``?dry_run=true`` answers it without writing."""

import pytest

from core.changesets import Changeset
from core.models import Event
from customers.models import Customer
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_a_batch_is_one_changeset_with_its_request_id_and_undoes_whole(api, user):
    kept = CustomerFactory(name="Kept")
    gone = CustomerFactory(name="Gone")
    body = {
        "create": [{"name": "New"}],
        "update": [{"id": kept.pk, "name": "Changed"}, {"id": 999999, "name": "Missing"}],
        "delete": [gone.pk],
    }
    answer = api.post("/api/customers/batch", body, format="json", HTTP_X_REQUEST_ID="req-batch-1")
    assert answer.status_code == 207
    data = answer.json()["data"]
    changeset = Changeset.objects.get(pk=data["changeset"]["id"])
    assert changeset.kind == "batch" and changeset.user == user
    assert changeset.source == {"request_id": "req-batch-1", "resource": "customers.customer"}
    assert data["changeset"]["counts"] == {"customers.customer": {"created": 1, "updated": 1, "deleted": 1}}
    assert changeset.rows.count() == 3  # the failed item left nothing

    undone = api.post(f"/api/changesets/{changeset.pk}/undo", {}, format="json")
    assert undone.status_code == 200
    assert Customer.objects.get(pk=kept.pk).name == "Kept"
    assert Customer.objects.get(pk=gone.pk).name == "Gone"
    assert not Customer.objects.filter(name="New").exists()


@pytest.mark.parametrize("atomic", ["false", "true"])
def test_a_dry_run_answers_the_items_and_the_changeset_and_writes_nothing(api, atomic):
    kept = CustomerFactory(name="Kept")
    events = Event.objects.count()
    body = {"create": [{"name": "New 新"}], "update": [{"id": kept.pk, "name": "Changed"}]}
    answer = api.post(f"/api/customers/batch?dry_run=true&atomic={atomic}", body, format="json")
    assert answer.status_code == 200, answer.content
    data = answer.json()["data"]
    assert [result["status"] for result in data["results"]] == [201, 200]
    assert data["dry_run"] is True
    preview = data["changeset"]
    assert preview["counts"] == {"customers.customer": {"created": 1, "updated": 1, "deleted": 0}}
    assert [(row["op"], row["name"]) for row in preview["rows"]] == [("created", "New 新"), ("updated", "Changed")]
    assert preview["rows"][1]["before"] == {"name": "Kept"} and preview["rows"][1]["after"] == {"name": "Changed"}
    assert not Customer.objects.filter(name="New 新").exists()
    assert Customer.objects.get(pk=kept.pk).name == "Kept"
    assert Event.objects.count() == events and not Changeset.objects.exists()


def test_an_atomic_batch_that_fails_makes_no_changeset(api):
    body = {"create": [{"name": "New"}], "update": [{"id": 999999, "name": "x"}]}
    answer = api.post("/api/customers/batch?atomic=true", body, format="json")
    assert answer.status_code == 400
    assert answer.json()["data"]["changeset"] is None
    assert not Changeset.objects.exists()


def test_dry_run_must_be_a_boolean(api):
    answer = api.post("/api/customers/batch?dry_run=perhaps", {"create": [{"name": "x"}]}, format="json")
    assert answer.status_code == 400 and "dry_run" in answer.json()["error"]["fields"]
    assert not Customer.objects.exists()
