"""The admin's list widgets render the HTML of Django's own."""

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
