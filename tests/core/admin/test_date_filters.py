"""Date drill-downs and date filters of the changelists: bad values are ``?e=1``, never a 500,
and records at the very end of the calendar can still be drilled into."""

import datetime

import pytest

from interactions.models import Interaction
from tests.factories import CustomerFactory, InteractionFactory, OpportunityFactory

pytestmark = pytest.mark.django_db

CUSTOMERS = "/admin/customers/customer/"
INTERACTIONS = "/admin/interactions/interaction/"
OPPORTUNITIES = "/admin/opportunities/opportunity/"
# A list of the site that is no CRMModelAdmin's.
CHANGESETS = "/admin/core/changeset/"

LAST_MOMENT = datetime.datetime(9999, 12, 31, 12, 0, tzinfo=datetime.UTC)


@pytest.fixture
def far_future_interaction():
    # Stored before dates were checked on input (the API took 9999-12-31 then).
    InteractionFactory(notes="ordinary", occurred_at=datetime.datetime(2025, 3, 1, tzinfo=datetime.UTC))
    return InteractionFactory(notes="typo", occurred_at=LAST_MOMENT)


def listed(response):
    return sorted(row.notes for row in response.context["cl"].result_list)


@pytest.mark.parametrize(
    "params",
    [
        {"occurred_at__year": "9999"},
        {"occurred_at__year": "9999", "occurred_at__month": "12"},
        {"occurred_at__year": "9999", "occurred_at__month": "12", "occurred_at__day": "31"},
    ],
)
def test_drilling_into_the_last_year_month_and_day_lists_the_record(admin_client, far_future_interaction, params):
    response = admin_client.get(INTERACTIONS, params)

    assert response.status_code == 200
    assert listed(response) == ["typo"]


def test_the_last_day_shows_in_the_hierarchy(admin_client, far_future_interaction):
    year = admin_client.get(INTERACTIONS, {"occurred_at__year": "9999"}).content.decode()
    month = admin_client.get(INTERACTIONS, {"occurred_at__year": "9999", "occurred_at__month": "12"}).content.decode()

    assert "occurred_at__month=12" in year
    assert "occurred_at__day=31" in month


def test_the_last_year_keeps_the_other_years_out(admin_client, far_future_interaction):
    assert listed(admin_client.get(INTERACTIONS, {"occurred_at__year": "2025"})) == ["ordinary"]
    assert listed(admin_client.get(INTERACTIONS, {"occurred_at__year": "2025", "occurred_at__month": "3"})) == [
        "ordinary"
    ]
    assert listed(admin_client.get(INTERACTIONS, {"occurred_at__year": "9998"})) == []


def test_drilling_into_the_first_year_is_not_a_crash(admin_client, far_future_interaction):
    response = admin_client.get(
        INTERACTIONS, {"occurred_at__year": "1", "occurred_at__month": "1", "occurred_at__day": "1"}
    )

    assert response.status_code == 200
    assert listed(response) == []


HIERARCHIES = [
    (CUSTOMERS, "created_at"),
    (INTERACTIONS, "occurred_at"),
    (OPPORTUNITIES, "created_at"),
    (CHANGESETS, "created_at"),
]
BAD_STEPS = [
    {"__year": "99999"},
    {"__year": "99999999999999999999"},
    {"__year": "10000"},
    {"__year": "0"},
    {"__year": "-1"},
    {"__year": "abc"},
    {"__year": ""},
    {"__year": "2025", "__month": "13"},
    {"__year": "2025", "__month": "0"},
    {"__year": "2025", "__month": "x"},
    {"__year": "2025", "__month": "2", "__day": "30"},
    {"__year": "2025", "__month": "1", "__day": "40"},
    {"__year": "2025", "__day": "abc"},
    {"__month": "abc"},
    {"__day": "1.5"},
]


@pytest.mark.parametrize(("url", "field"), HIERARCHIES)
@pytest.mark.parametrize("step", BAD_STEPS)
def test_a_date_hierarchy_step_that_is_no_date_is_an_error_flag(admin_client, url, field, step):
    InteractionFactory()
    OpportunityFactory()

    response = admin_client.get(url, {f"{field}{suffix}": value for suffix, value in step.items()})

    assert response.status_code == 302
    assert response["Location"] == f"{url}?e=1"
    assert admin_client.get(response["Location"]).status_code == 200


@pytest.mark.parametrize(
    ("url", "params"),
    [
        (CUSTOMERS, {"created_at__gte": "abc"}),
        (CUSTOMERS, {"created_at__lt": "10000-01-01"}),
        (INTERACTIONS, {"occurred_at__gte": "99999-01-01 00:00:00"}),
        (INTERACTIONS, {"occurred_at__lt": "2025-13-01"}),
        (OPPORTUNITIES, {"expected_close_date__gte": "99999-01-01"}),
        (OPPORTUNITIES, {"expected_close_date__lt": "someday"}),
        (OPPORTUNITIES, {"created_at__gte": "2025-02-30"}),
    ],
)
def test_a_date_filter_that_is_no_date_is_an_error_flag(admin_client, url, params):
    OpportunityFactory(expected_close_date=datetime.date(2025, 6, 30))

    response = admin_client.get(url, params)

    assert response.status_code == 302
    assert response["Location"] == f"{url}?e=1"


def test_date_filters_at_the_end_of_the_calendar_work(admin_client, far_future_interaction):
    OpportunityFactory(title="Far", expected_close_date=datetime.date(9999, 12, 31))
    OpportunityFactory(title="Near", expected_close_date=datetime.date(2025, 6, 30))

    late = admin_client.get(INTERACTIONS, {"occurred_at__gte": "9999-12-31T00:00:00+00:00"})
    closing = admin_client.get(OPPORTUNITIES, {"expected_close_date__gte": "9999-12-31"})

    assert listed(late) == ["typo"]
    assert [row.title for row in closing.context["cl"].result_list] == ["Far"]


def test_the_unfiltered_list_with_a_far_future_record_offers_its_year(admin_client, far_future_interaction):
    response = admin_client.get(INTERACTIONS)

    assert response.status_code == 200
    assert "occurred_at__year=9999" in response.content.decode()
    assert Interaction.objects.count() == len(response.context["cl"].result_list) == 2


def test_customers_hierarchy_drills_to_a_day(admin_client):
    customer = CustomerFactory(name="Dated")
    day = customer.created_at

    response = admin_client.get(
        CUSTOMERS, {"created_at__year": day.year, "created_at__month": day.month, "created_at__day": day.day}
    )

    assert [row.name for row in response.context["cl"].result_list] == ["Dated"]
