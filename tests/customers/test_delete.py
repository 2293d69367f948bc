from django.db import connection
from django.test.utils import CaptureQueriesContext

from customers.models import Customer
from interactions.models import Interaction
from opportunities.models import Opportunity, StageChange
from tasks.models import Task
from tests.factories import CustomerFactory, InteractionFactory, OpportunityFactory, TaskFactory


def customer_with(interactions, opportunities, tasks=0):
    customer = CustomerFactory()
    InteractionFactory.create_batch(interactions, customer=customer)
    for opportunity in OpportunityFactory.create_batch(opportunities, customer=customer):
        opportunity.stage = Opportunity.Stage.PROPOSAL
        opportunity.save()
        # Tasks on the deal and on the customer alone.
        TaskFactory.create_batch(tasks, customer=customer, opportunity=opportunity)
    TaskFactory.create_batch(tasks, customer=customer)
    return customer


def delete(api, customer):
    with CaptureQueriesContext(connection) as captured:
        response = api.delete(f"/api/customers/{customer.pk}")
    assert response.status_code == 200, response.content
    return response.json(), len(captured)


def test_delete_removes_the_customer_with_everything_it_owns(api, db):
    doomed = customer_with(interactions=4, opportunities=3, tasks=1)
    kept = customer_with(interactions=2, opportunities=1, tasks=2)

    body, _ = delete(api, doomed)

    assert body["data"] == {
        "id": doomed.pk,
        "deleted": {"customers": 1, "interactions": 4, "opportunities": 3, "tasks": 4},
    }
    assert not Task.objects.filter(customer_id=doomed.pk).exists()
    assert Task.objects.filter(customer=kept).count() == 4
    assert Task.history.filter(customer_id=doomed.pk, history_type="-").count() == 4
    assert body["message"] == "Customer deleted."
    assert not Customer.objects.filter(pk=doomed.pk).exists()
    assert not Interaction.objects.filter(customer_id=doomed.pk).exists()
    assert not Opportunity.objects.filter(customer_id=doomed.pk).exists()
    assert StageChange.objects.filter(opportunity__customer=kept).count() == 2
    assert Interaction.objects.filter(customer=kept).count() == 2


def test_delete_queries_do_not_grow_with_the_customers_history(api, db):
    _, small = delete(api, customer_with(interactions=2, opportunities=1, tasks=1))
    _, large = delete(api, customer_with(interactions=60, opportunities=12, tasks=5))

    assert small == large


def test_delete_records_every_deleted_record_in_history_with_the_token_user(api, user, db):
    customer = CustomerFactory(name="Gone")
    interaction = InteractionFactory(customer=customer, notes="最后一次通话")
    opportunity = OpportunityFactory(customer=customer, title="Lost cause")

    delete(api, customer)

    for model, pk in [(Customer, customer.pk), (Interaction, interaction.pk), (Opportunity, opportunity.pk)]:
        record = model.history.filter(id=pk, history_type="-").get()
        assert record.history_user_id == user.pk, model
    assert Interaction.history.get(id=interaction.pk, history_type="-").notes == "最后一次通话"
    assert Opportunity.history.get(id=opportunity.pk, history_type="-").title == "Lost cause"
    response = api.get(f"/api/interactions/{interaction.pk}/history")
    assert response.status_code == 404
