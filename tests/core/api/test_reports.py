"""Report endpoints compute their figures over the records the user may see, whatever the report."""

import json
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.db.models import Sum
from rest_framework.test import APIRequestFactory, force_authenticate

from core.api.query import QuerySerializer
from core.api.reports import ScopedReportView
from opportunities.models import Opportunity
from tests.factories import CustomerFactory, ManagerFactory, OpportunityFactory, UserFactory

pytestmark = pytest.mark.django_db


class TotalValueReport(ScopedReportView):
    """A new report that only says what to compute."""

    query_serializer_class = QuerySerializer
    payload_schema = {"type": "object"}

    def report(self, query):
        opportunities = self.scoped(Opportunity)
        return {"count": opportunities.count(), "total": opportunities.aggregate(total=Sum("value"))["total"]}


def rep(name):
    user = UserFactory(username=name)
    user.groups.add(Group.objects.get(name="Sales rep"))
    return user


def figures(user):
    request = APIRequestFactory().get("/reports/total")
    force_authenticate(request, user=user)
    response = TotalValueReport.as_view()(request)
    response.render()
    assert response.status_code == 200
    return json.loads(response.content)["data"]


def test_a_new_report_sees_only_the_reps_book():
    alice, bob = rep("alice"), rep("bob")
    OpportunityFactory(customer=CustomerFactory(owner=alice), value=Decimal("100"))
    OpportunityFactory(customer=CustomerFactory(owner=alice), value=Decimal("50"))
    OpportunityFactory(customer=CustomerFactory(owner=bob), value=Decimal("9000"))

    assert figures(alice) == {"count": 2, "total": 150.0}
    assert figures(bob) == {"count": 1, "total": 9000.0}
    assert figures(ManagerFactory()) == {"count": 3, "total": 9150.0}


def test_a_bad_query_parameter_of_a_report_is_a_400_in_the_envelope(api):
    response = api.get("/api/reports/forecast", {"months": "many"})

    assert response.status_code == 400
    assert response.json()["success"] is False
    assert "months" in response.json()["error"]["fields"]
