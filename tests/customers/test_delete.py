from django.db import connection
from django.test.utils import CaptureQueriesContext

from customers.models import Customer
from interactions.models import Interaction
from opportunities.models import Opportunity, StageChange
from tests.factories import CustomerFactory, InteractionFactory, OpportunityFactory


def customer_with(interactions, opportunities):
    customer = CustomerFactory()
    InteractionFactory.create_batch(interactions, customer=customer)
    for opportunity in OpportunityFactory.create_batch(opportunities, customer=customer):
        opportunity.stage = Opportunity.Stage.PROPOSAL
        opportunity.save()
    return customer


def delete(api, customer):
    with CaptureQueriesContext(connection) as captured:
        response = api.delete(f"/api/customers/{customer.pk}")
    assert response.status_code == 200, response.content
    return response.json(), len(captured)


def test_delete_removes_the_customer_with_everything_it_owns(api, db):
    doomed = customer_with(interactions=4, opportunities=3)
    kept = customer_with(interactions=2, opportunities=1)

    body, _ = delete(api, doomed)

    assert body["data"] == {"id": doomed.pk, "deleted": {"customers": 1, "interactions": 4, "opportunities": 3}}
    assert body["message"] == "Customer deleted."
    assert not Customer.objects.filter(pk=doomed.pk).exists()
    assert not Interaction.objects.filter(customer_id=doomed.pk).exists()
    assert not Opportunity.objects.filter(customer_id=doomed.pk).exists()
    assert StageChange.objects.filter(opportunity__customer=kept).count() == 2
    assert Interaction.objects.filter(customer=kept).count() == 2


def test_delete_queries_do_not_grow_with_the_customers_history(api, db):
    _, small = delete(api, customer_with(interactions=2, opportunities=1))
    _, large = delete(api, customer_with(interactions=60, opportunities=12))

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
