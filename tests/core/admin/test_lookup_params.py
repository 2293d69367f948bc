"""Filters typed into a list's address that no row can match and the database would fail on: a NUL
character, a whole number beyond 64 bits. Every list of the site answers them with ``?e=1``, never a 500;
and a selection posted to its actions that names no id, with a message."""

import pytest
from django.contrib import admin
from django.db import models, transaction
from django.test import Client, RequestFactory
from django.urls import reverse

from tests.factories import OpportunityFactory, StaffFactory

pytestmark = pytest.mark.django_db

HUGE = "99999999999999999999999"


MODELS = sorted(admin.site._registry, key=lambda model: model._meta.label)


def changelist(model):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def relations_and_ids(model):
    """The filters on every id and relation of ``model`` (``customer``, ``owner_id``, ``id__in``, ``tag_set``)."""
    names = ["id__in"]
    for field in model._meta.get_fields():
        if field.is_relation and field.concrete:
            names += [field.name, f"{field.name}__in", f"{field.name}__exact"]
    return names


@pytest.fixture
def superuser():
    return StaffFactory(username="root")


@pytest.fixture
def superuser_client(superuser):
    client = Client(raise_request_exception=False)
    client.force_login(superuser)
    return client


def get(client, url, params):
    # One request's failure on PostgreSQL would abort the test's transaction for the next ones.
    with transaction.atomic():
        response = client.get(url, params)
    if response.status_code == 302 and not response["Location"].endswith("?e=1"):
        # A list that opens on a filter of its own (the duplicates: the open pairs) adds it first.
        with transaction.atomic():
            response = client.get(response["Location"])
    return response


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model._meta.label)
def test_a_number_beyond_64_bits_in_any_relation_filter_is_an_error_flag(superuser_client, model):
    url = changelist(model)
    for name in relations_and_ids(model):
        response = get(superuser_client, url, {name: HUGE})
        assert (name, response.status_code, response.get("Location")) == (name, 302, f"{url}?e=1")


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model._meta.label)
def test_a_nul_character_in_a_filter_is_an_error_flag(superuser_client, model):
    url = changelist(model)
    for field in model._meta.concrete_fields:
        response = get(superuser_client, url, {field.name: "a\x00b"})
        assert (field.name, response.status_code, response.get("Location")) == (field.name, 302, f"{url}?e=1")


def test_a_choice_filter_with_a_nul_character_is_an_error_flag(superuser_client):
    OpportunityFactory()
    response = get(superuser_client, "/admin/opportunities/opportunity/", {"stage": "\x00"})
    assert (response.status_code, response["Location"]) == (302, "/admin/opportunities/opportunity/?e=1")


def test_ordinary_relation_filters_still_filter(superuser_client):
    opportunity = OpportunityFactory()
    OpportunityFactory()
    url = "/admin/opportunities/opportunity/"
    for params in ({"customer": opportunity.customer_id}, {"customer__in": f"{opportunity.customer_id},-5"}):
        response = get(superuser_client, url, params)
        assert response.status_code == 200
        assert [row.pk for row in response.context["cl"].result_list] == [opportunity.pk]


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model._meta.label)
def test_an_action_on_a_selection_that_names_no_id_changes_nothing_and_says_so(superuser_client, superuser, model):
    OpportunityFactory()
    url = changelist(model)
    request = RequestFactory().get(url)
    request.user = superuser
    rows = model._default_manager.count()
    # API tokens have a text key: any text names one, but a NUL character none.
    numbered = isinstance(model._meta.pk, models.IntegerField)
    for action in admin.site._registry[model].get_actions(request):
        for selected in (["abc"], ["1.5"], ["1\x00"], [HUGE]) if numbered else (["1\x00"],):
            data = {"action": action, "_selected_action": selected, "index": "0"}
            with transaction.atomic():
                response = superuser_client.post(url, data, follow=True)
            assert (action, selected, response.status_code) == (action, selected, 200)
            assert "Items must be selected" in response.content.decode()
    assert model._default_manager.count() == rows


@pytest.mark.parametrize(
    ("app_label", "model_name", "field_name"),
    [
        ("interactions", "interaction", "customer"),
        ("opportunities", "opportunity", "company"),
        ("tasks", "task", "opportunity"),
        ("customers", "customer", "tag_set"),
    ],
)
def test_a_record_pickers_search_with_a_nul_character_finds_nothing(
    superuser_client, app_label, model_name, field_name
):
    OpportunityFactory()
    params = {"app_label": app_label, "model_name": model_name, "field_name": field_name}

    for term in ("a\x00b", "\x00"):
        response = superuser_client.get("/admin/autocomplete/", {**params, "term": term})
        assert (term, response.status_code, response.json()["results"]) == (term, 200, [])
