"""An address typed into an admin form without its scheme is taken as https."""

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model

from companies.models import Company
from webhooks.models import Endpoint


@pytest.mark.django_db
@pytest.mark.parametrize(("model", "field"), [(Company, "website"), (Endpoint, "url")])
def test_an_address_without_its_scheme_is_taken_as_https(rf, model, field):
    request = rf.get("/")
    request.user = get_user_model()(is_superuser=True, is_staff=True)
    form = admin.site._registry[model].get_form(request)

    assert form.base_fields[field].clean("hooks.example.com/in") == "https://hooks.example.com/in"
    assert form.base_fields[field].clean("http://hooks.example.com/in") == "http://hooks.example.com/in"
