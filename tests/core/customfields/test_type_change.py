"""Changing a custom field's type or choices: the stored values converted under their locks, each record
with its history entry and event, the whole change one changeset that undo reverses (definition
included) or refuses clearly; purging the same way."""

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse

from core import customfields
from core.changesets import Changeset, UndoRefused, undo
from core.models import CustomField, Event
from customers.models import Customer
from tests.concurrency import Thread, ended, waits
from tests.factories import CustomerFactory, ManagerFactory

pytestmark = pytest.mark.django_db


def define(key="seats", field_type="text", **extra):
    return CustomField.objects.create(model="customers", key=key, label=key.title(), field_type=field_type, **extra)


def stored(customer):
    return Customer.objects.get(pk=customer.pk).custom_fields


def after_each_read(monkeypatch, action):
    """Run ``action(n)`` after the n-th read of the stored values made without locks (the check of a
    new type): what another writer may do between that read and the conversion."""
    read = customfields.converted_values
    calls = []

    def reading(*args, **kwargs):
        result = read(*args, **kwargs)
        calls.append(1)
        action(len(calls))
        return result

    monkeypatch.setattr(customfields, "converted_values", reading)


def retype(api, definition, **body):
    return api.patch(f"/api/custom-fields/{definition.pk}", body, format="json")


def test_a_value_edited_after_the_check_is_converted_from_the_edit(api, monkeypatch):
    definition = define()
    customer = CustomerFactory(custom_fields={"seats": "7", "note": "x"})
    edits = []

    def edit(n):
        record = Customer.objects.get(pk=customer.pk)
        record.custom_fields = {**record.custom_fields, "seats": str(100 + n)}
        record.save()
        edits.append(100 + n)

    after_each_read(monkeypatch, edit)
    answer = retype(api, definition, field_type="number")
    assert answer.status_code == 200, answer.content
    assert stored(customer) == {"seats": edits[-1], "note": "x"}


def test_a_decimal_that_is_a_whole_number_is_stored_as_an_integer_once_the_type_is_number(api):
    definition = define(field_type="decimal")
    customer = CustomerFactory(custom_fields={"seats": 5.0})
    answer = retype(api, definition, field_type="number")
    assert answer.status_code == 200, answer.content
    value = stored(customer)["seats"]
    assert (value, type(value)) == (5, int)


def test_a_record_deleted_after_the_check_is_skipped(api, monkeypatch):
    definition = define()
    customers = [CustomerFactory(custom_fields={"seats": str(n)}) for n in range(3)]
    after_each_read(monkeypatch, lambda n: customers[n - 1].delete())
    answer = retype(api, definition, field_type="number")
    assert answer.status_code == 200, answer.content
    left = {c.pk: c.custom_fields["seats"] for c in Customer.objects.filter(pk__in=[c.pk for c in customers])}
    assert left and all(isinstance(value, int) for value in left.values())


def test_a_value_that_no_longer_fits_refuses_the_whole_change(api, monkeypatch):
    definition = define()
    first = CustomerFactory(custom_fields={"seats": "1"})
    second = CustomerFactory(custom_fields={"seats": "2"})

    def misfit(n):
        Customer.objects.filter(pk=second.pk).update(custom_fields={"seats": "many"})

    after_each_read(monkeypatch, misfit)
    answer = retype(api, definition, field_type="number")
    assert answer.status_code == 400, answer.content
    assert "many" not in str(answer.json()) and "field_type" in answer.json()["error"]["fields"]
    definition.refresh_from_db()
    assert definition.field_type == "text"
    assert stored(first) == {"seats": "1"}  # converted first, rolled back with the rest
    assert not Changeset.objects.exists()


def test_the_admin_refuses_a_value_that_no_longer_fits_with_a_message(admin_client, monkeypatch):
    definition = define()
    customer = CustomerFactory(custom_fields={"seats": "1"})
    after_each_read(monkeypatch, lambda n: Customer.objects.filter(pk=customer.pk).update(custom_fields={"seats": "x"}))
    url = reverse("admin:core_customfield_change", args=[definition.pk])
    body = {"label": "Seats", "field_type": "number", "order": "0", "choices": ""}
    answer = admin_client.post(url, body, follow=True)
    assert answer.status_code == 200
    assert "do not fit" in answer.content.decode()
    definition.refresh_from_db()
    assert definition.field_type == "text"


def deleted_since_read(definition):
    """The definition deleted since ``definition`` was read is still gone: not inserted again by its save."""
    return not CustomField.objects.filter(pk=definition.pk).exists() and not CustomField.objects.exists()


@pytest.mark.parametrize("changes", [{"label": "Places"}, {"field_type": "number"}], ids=["label", "type"])
def test_saving_a_definition_deleted_since_it_was_read_is_refused_and_writes_nothing(changes, user):
    definition = define()
    customer = CustomerFactory(custom_fields={"seats": "7"})
    CustomField.objects.filter(pk=definition.pk).delete()
    for name, value in changes.items():
        setattr(definition, name, value)

    with pytest.raises(customfields.DefinitionGone) as gone:
        customfields.save_definition(definition, user=user)

    assert str(gone.value) == "The custom field customers.seats was deleted meanwhile: nothing was saved."
    assert deleted_since_read(definition)
    assert stored(customer) == {"seats": "7"}
    assert not Changeset.objects.exists()


def untouched_by_the_request(definition, customer):
    """The request that deleted ``definition`` after its check, then saved it, was rolled back whole: the
    definition is as it was (not inserted again as changed), and its records' values too."""
    assert list(CustomField.objects.values_list("pk", "field_type")) == [(definition.pk, "text")]
    assert stored(customer) == {"seats": "7"}
    return not Changeset.objects.exists()


def test_the_api_answers_404_for_a_definition_deleted_after_its_check(api, monkeypatch):
    # The API locks the definition before the check; here it is deleted in the request's own transaction,
    # after the check, the only way its save can find it gone.
    definition = define()
    customer = CustomerFactory(custom_fields={"seats": "7"})
    after_each_read(monkeypatch, lambda n: CustomField.objects.filter(pk=definition.pk).delete())

    answer = retype(api, definition, field_type="number")

    assert answer.status_code == 404, answer.content
    assert answer.json()["error"]["message"] == (
        "The custom field customers.seats was deleted meanwhile: nothing was saved."
    )
    assert untouched_by_the_request(definition, customer)


def test_the_admin_refuses_a_definition_deleted_after_its_check_with_a_message(admin_client, monkeypatch):
    definition = define()
    customer = CustomerFactory(custom_fields={"seats": "7"})
    after_each_read(monkeypatch, lambda n: CustomField.objects.filter(pk=definition.pk).delete())
    url = reverse("admin:core_customfield_change", args=[definition.pk])
    body = {"label": "Seats", "field_type": "number", "order": "0", "choices": ""}

    answer = admin_client.post(url, body)

    assert answer.status_code == 302
    assert answer["Location"] == reverse("admin:core_customfield_changelist")
    assert [str(m) for m in answer.wsgi_request._messages] == [
        "The custom field customers.seats was deleted meanwhile: nothing was saved."
    ]
    assert untouched_by_the_request(definition, customer)


def test_each_converted_record_has_a_history_entry_and_an_event_by_the_manager(api, user):
    definition = define()
    converted = CustomerFactory(custom_fields={"seats": "7"})
    kept = CustomerFactory(custom_fields={"seats": "8"})
    Customer.objects.filter(pk=kept.pk).update(custom_fields={"seats": 8})  # fits already: left alone
    entries = {c.pk: c.history.count() for c in (converted, kept)}
    start = Event.objects.order_by("-id").values_list("id", flat=True).first()
    assert retype(api, definition, field_type="number").status_code == 200
    latest = Customer.history.filter(id=converted.pk).order_by("-history_id").first()
    assert latest.custom_fields == {"seats": 7} and latest.history_user == user
    assert Customer.history.filter(id=converted.pk).count() == entries[converted.pk] + 1
    assert Customer.history.filter(id=kept.pk).count() == entries[kept.pk]
    event = Event.objects.filter(id__gt=start, type="customer.updated").get()
    assert event.object_id == converted.pk and event.actor_id == user.pk
    assert event.changes["custom_fields"] == {"old": {"seats": "7"}, "new": {"seats": 7}}


def test_a_type_change_is_one_changeset_that_undo_reverses_with_the_definition(api, user):
    definition = define()
    customers = [CustomerFactory(custom_fields={"seats": str(n), "note": "x"}) for n in range(3)]
    assert retype(api, definition, field_type="number").status_code == 200
    changeset = Changeset.objects.get()
    assert changeset.kind == "action" and changeset.user == user
    assert changeset.counts == {"customers.customer": {"created": 0, "updated": 3, "deleted": 0}}
    assert changeset.source["custom_field_type"]["before"] == {"field_type": "text", "choices": []}
    answer = api.post(f"/api/changesets/{changeset.pk}/undo", {}, format="json")
    assert answer.status_code == 200, answer.content
    definition.refresh_from_db()
    assert definition.field_type == "text"
    assert [stored(c)["seats"] for c in customers] == ["0", "1", "2"]
    # Undoing the undo changes the type again.
    redo = Changeset.objects.get(pk=answer.json()["data"]["id"])
    assert api.post(f"/api/changesets/{redo.pk}/undo", {}, format="json").status_code == 200
    definition.refresh_from_db()
    assert definition.field_type == "number"
    assert [stored(c)["seats"] for c in customers] == [0, 1, 2]


def test_undo_converts_values_written_since_back_to_the_old_type(api, user):
    definition = define()
    converted = CustomerFactory(custom_fields={"seats": "7"})
    assert retype(api, definition, field_type="number").status_code == 200
    changeset = Changeset.objects.get()
    later = CustomerFactory(custom_fields={"seats": 8})
    done = undo(changeset, user)
    assert stored(converted) == {"seats": "7"} and stored(later) == {"seats": "8"}
    assert done.counts == {"customers.customer": {"created": 0, "updated": 2, "deleted": 0}}


def test_undo_is_refused_when_a_value_written_since_does_not_fit_the_old_choices(api, user):
    definition = define(key="tier", field_type="choice", choices=["Gold"])
    converted = CustomerFactory(custom_fields={"tier": "Gold"})
    assert retype(api, definition, choices=["gold", "silver"]).status_code == 200
    changeset = Changeset.objects.get()
    later = CustomerFactory(custom_fields={"tier": "silver"})
    answer = api.post(f"/api/changesets/{changeset.pk}/undo", {}, format="json")
    assert answer.status_code == 409, answer.content
    assert "do not fit" in answer.json()["error"]["message"]
    definition.refresh_from_db()
    assert definition.choices == ["gold", "silver"]
    assert stored(converted) == {"tier": "gold"} and stored(later) == {"tier": "silver"}


@pytest.mark.parametrize("since", ["type changed", "deleted"])
def test_undo_after_the_definition_changed_is_a_clear_conflict(api, user, since):
    definition = define()
    customer = CustomerFactory(custom_fields={"seats": "7"})
    assert retype(api, definition, field_type="number").status_code == 200
    changeset = Changeset.objects.get()
    if since == "deleted":
        assert api.delete(f"/api/custom-fields/{definition.pk}").status_code == 200
    else:
        assert retype(api, definition, field_type="decimal").status_code == 200
    answer = api.post(f"/api/changesets/{changeset.pk}/undo", {"skip_conflicts": True}, format="json")
    assert answer.status_code == 409, answer.content
    error = answer.json()["error"]
    assert error["code"] == "undo_conflict" and "customers.seats" in error["message"]
    assert error["conflicts"][0]["model"] == "core.customfield"
    assert stored(customer) == {"seats": 7}
    assert Changeset.objects.get(pk=changeset.pk).status == Changeset.Status.APPLIED


def test_a_definition_created_over_hidden_values_converts_them_and_its_undo_is_refused(api, user):
    customer = CustomerFactory(custom_fields={"seats": "7"})  # a deleted definition's value
    body = {"model": "customers", "key": "seats", "label": "Seats", "field_type": "number"}
    assert api.post("/api/custom-fields", body, format="json").status_code == 201
    assert stored(customer) == {"seats": 7}
    changeset = Changeset.objects.get()
    assert changeset.source["custom_field_type"]["before"] is None
    answer = api.post(f"/api/changesets/{changeset.pk}/undo", {}, format="json")
    assert answer.status_code == 409 and "created by this change" in answer.json()["error"]["message"]
    assert stored(customer) == {"seats": 7}


def test_undo_of_a_record_changed_since_conflicts_as_any_other(api, user):
    definition = define()
    customer = CustomerFactory(custom_fields={"seats": "7"})
    assert retype(api, definition, field_type="number").status_code == 200
    changeset = Changeset.objects.get()
    assert api.patch(f"/api/customers/{customer.pk}", {"custom_fields": {"seats": 9}}, format="json").status_code == 200
    with pytest.raises(UndoRefused) as refused:
        undo(changeset, user)
    assert refused.value.conflicts[0]["reason"] == "changed"
    assert stored(customer) == {"seats": 9}


def test_a_definition_saved_from_the_admin_records_its_manager(admin_client, admin_user):
    definition = define()
    customer = CustomerFactory(custom_fields={"seats": "7"})
    url = reverse("admin:core_customfield_change", args=[definition.pk])
    body = {"label": "Seats", "field_type": "number", "order": "0", "choices": ""}
    assert admin_client.post(url, body).status_code == 302
    assert stored(customer) == {"seats": 7}
    assert Changeset.objects.get().user == admin_user
    assert Customer.history.filter(id=customer.pk).order_by("-history_id").first().history_user == admin_user


def test_a_label_change_rewrites_no_record(api):
    definition = define()
    customer = CustomerFactory(custom_fields={"seats": " 7 "})
    assert api.patch(f"/api/custom-fields/{definition.pk}", {"label": "Places"}, format="json").status_code == 200
    assert stored(customer) == {"seats": " 7 "} and not Changeset.objects.exists()


def test_purge_records_history_and_a_changeset_and_refuses_undo_once_defined_again():
    definition = define()
    customer = CustomerFactory(custom_fields={"seats": "7", "note": "x"})
    definition.delete()
    call_command("purge_custom_field", "customers", "seats")
    assert stored(customer) == {"note": "x"}
    latest = Customer.history.filter(id=customer.pk).order_by("-history_id").first()
    assert latest.custom_fields == {"note": "x"}
    changeset = Changeset.objects.get()
    assert changeset.counts["customers.customer"]["updated"] == 1
    define(field_type="number")
    with pytest.raises(UndoRefused) as refused:
        undo(changeset, ManagerFactory())
    assert "defined again" in refused.value.message
    CustomField.objects.filter(key="seats").delete()
    undo(changeset, ManagerFactory())
    assert stored(customer) == {"seats": "7", "note": "x"}


# Two connections at once (PostgreSQL): another writer holds the record's lock while the conversion starts.


def _while_the_conversion_waits(change, work):
    """Run ``change`` (the conversion) in another connection while ``work`` holds its writes uncommitted, from
    the moment ``change`` waits for them. Returns the errors of ``change``."""
    converting = Thread(change)
    with transaction.atomic():
        work()
        converting.start()
        assert waits(converting), "the conversion never waited for the writes held"
    ended(converting)
    return [converting.error] if converting.error is not None else []


def _convert_to_number(definition):
    def change():
        definition.field_type = "number"
        with transaction.atomic():  # as the API's and the admin's requests run it
            customfields.save_definition(definition)

    return change


pg_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="two connections at once: PostgreSQL")


@pg_only
@pytest.mark.django_db(transaction=True)
def test_a_concurrent_edit_is_converted_not_overwritten():
    definition = define()
    customer = CustomerFactory(custom_fields={"seats": "7", "note": "x"})

    def edit():
        record = Customer.objects.select_for_update().get(pk=customer.pk)
        record.custom_fields = {"seats": "42", "note": "y"}
        record.save()

    assert _while_the_conversion_waits(_convert_to_number(definition), edit) == []
    assert stored(customer) == {"seats": 42, "note": "y"}


@pg_only
@pytest.mark.django_db(transaction=True)
def test_a_record_deleted_concurrently_is_skipped():
    definition = define()
    gone = CustomerFactory(custom_fields={"seats": "7"})
    kept = CustomerFactory(custom_fields={"seats": "8"})

    def delete():
        Customer.objects.select_for_update().get(pk=gone.pk).delete()

    assert _while_the_conversion_waits(_convert_to_number(definition), delete) == []
    assert stored(kept) == {"seats": 8} and not Customer.objects.filter(pk=gone.pk).exists()


@pg_only
@pytest.mark.django_db(transaction=True)
def test_purge_keeps_a_concurrent_edit_of_another_value():
    definition = define()
    customer = CustomerFactory(custom_fields={"seats": "7", "note": "x"})
    definition.delete()

    def edit():
        record = Customer.objects.select_for_update().get(pk=customer.pk)
        record.custom_fields = {**record.custom_fields, "note": "y"}
        record.save()

    def purge():
        with transaction.atomic():
            customfields.purge("customers", "seats")

    assert _while_the_conversion_waits(purge, edit) == []
    assert stored(customer) == {"note": "y"}


@pg_only
@pytest.mark.django_db(transaction=True)
def test_the_admin_refuses_a_definition_deleted_while_its_save_waits():
    # The admin's page reads the definition without a lock: deleted by another manager meanwhile, its save
    # waits for the delete, then finds it gone rather than inserting it again.
    definition = define()
    customer = CustomerFactory(custom_fields={"seats": "7"})
    client = Client()
    client.force_login(ManagerFactory(is_staff=True))
    url = reverse("admin:core_customfield_change", args=[definition.pk])
    answers = []

    def saving():
        answers.append(client.post(url, {"label": "Seats", "field_type": "number", "order": "0", "choices": ""}))

    failed = _while_the_conversion_waits(saving, lambda: CustomField.objects.filter(pk=definition.pk).delete())

    assert failed == []
    assert answers[0].status_code == 302
    assert answers[0]["Location"] == reverse("admin:core_customfield_changelist")
    assert deleted_since_read(definition)
    assert stored(customer) == {"seats": "7"}
