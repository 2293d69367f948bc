"""The admin's list widgets render the HTML of Django's own; its record pickers take any value."""

import pytest
from django import forms

from core.admin.widgets import ListSelect

CHOICES = [("", "---------"), ("lead", "Lead"), ("won", 'Won <&> "quoted"'), (3, "Three"), ("ß", "Straße")]
GROUPED = [("", "none"), ("Open", [("lead", "Lead"), ("qualified", "Qualified")]), ("Closed", [("won", "Won")])]


@pytest.mark.parametrize("choices", [CHOICES, GROUPED, []], ids=["flat", "grouped", "empty"])
@pytest.mark.parametrize("value", [None, "", "lead", "won", 3, "3", "missing", ["lead", "won"]])
@pytest.mark.parametrize(
    "attrs",
    [None, {"id": "id_form-0-stage"}, {"id": "x", "class": 'a "b"', "disabled": True, "required": False, "data-n": 5}],
)
@pytest.mark.parametrize("multiple", [False, True], ids=["select", "multiple"])
def test_list_select_renders_what_django_select_renders(choices, value, attrs, multiple):
    base, fast = (
        (forms.SelectMultiple, type("Multiple", (ListSelect, forms.SelectMultiple), {}))
        if multiple
        else (
            forms.Select,
            ListSelect,
        )
    )
    expected = base(choices=choices).render("form-0-stage", value, attrs)
    assert fast(choices=choices).render("form-0-stage", value, attrs) == expected


def test_list_select_is_what_a_list_editable_choice_field_gets(admin_client):
    from opportunities.models import Opportunity
    from tests.factories import OpportunityFactory

    OpportunityFactory(stage=Opportunity.Stage.LEAD)
    changelist = admin_client.get("/admin/opportunities/opportunity/").context["cl"]
    [form] = changelist.formset.forms
    assert isinstance(form.fields["stage"].widget, ListSelect)
    assert 'name="form-0-stage"' in str(form["stage"])


NO_IDS = ["abc", "1.5", "1\x00", "99999999999999999999"]


@pytest.mark.django_db
@pytest.mark.parametrize("value", NO_IDS)
@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/admin/interactions/interaction/add/", "customer"),
        ("/admin/tasks/task/add/", "customer"),
        ("/admin/opportunities/opportunity/add/", "customer"),
        ("/admin/customers/customer/add/", "company"),
        ("/admin/customers/customer/add/", "tags"),
        ("/admin/opportunities/opportunity/add/", "tags"),
    ],
)
def test_a_record_picker_given_a_value_that_is_no_id_shows_no_choice(admin_client, url, field, value):
    page = admin_client.get(url, {field: value})

    assert page.status_code == 200
    assert page.context["adminform"].form[field].value() in (value, [value])


@pytest.mark.django_db
@pytest.mark.parametrize("value", NO_IDS)
@pytest.mark.parametrize("field", ["tags", "initial-tags"])
def test_a_record_posted_with_a_tag_that_is_no_id_is_refused_on_its_tags(admin_client, field, value):
    from customers.models import Customer
    from tests.core.admin.helpers import change_form_data
    from tests.factories import CustomerFactory

    customer = CustomerFactory(name="Ada", tags=["vip"])
    url = f"/admin/customers/customer/{customer.pk}/change/"
    data = {**change_form_data(admin_client.get(url)), "name": "Grace", field: [value]}

    page = admin_client.post(url, data)

    assert page.status_code == 200
    assert "tags" in page.context["adminform"].form.errors
    assert Customer.objects.get().name == "Ada"
