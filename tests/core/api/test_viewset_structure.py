"""The API's views are built so that each concern has one home.

A method overridden twice along one class's chain of project classes (a mixin
overriding ``update`` and the base viewset overriding it again) hides the order
in which things happen; the base viewset is one class read top to bottom
instead. A concrete resource viewset may override a method of its base once.
"""

import inspect

import pytest
from django.urls import get_resolver

from core.api.changesets import ChangesetViewSet
from core.api.events import EventViewSet
from core.api.reports import ScopedReportView
from core.api.viewsets import CRMModelViewSet
from crm_site.api_router import router
from duplicates.views import DuplicateCandidateViewSet
from notifications.views import NotificationViewSet

PROJECT_PACKAGES = {
    "duplicates",
    "core",
    "crm_site",
    "companies",
    "customers",
    "interactions",
    "opportunities",
    "operations",
    "tasks",
    "webhooks",
    "notifications",
    "calendars",
    "mailgateway",
    "reminders",
}


def _is_project_class(cls):
    return cls.__module__.split(".")[0] in PROJECT_PACKAGES


def _methods(cls):
    return {
        name
        for name, value in vars(cls).items()
        if inspect.isfunction(value) or isinstance(value, (property, classmethod, staticmethod))
    }


def methods_defined_twice(view_class):
    """Method name -> the project classes that define it, among the bases of ``view_class`` (itself excluded)."""
    owners = {}
    for base in view_class.__mro__[1:]:
        if _is_project_class(base):
            for name in _methods(base):
                owners.setdefault(name, []).append(base.__name__)
    return {name: classes for name, classes in owners.items() if len(classes) > 1}


def _view_classes(patterns):
    for pattern in patterns:
        if hasattr(pattern, "url_patterns"):
            yield from _view_classes(pattern.url_patterns)
            continue
        callback = pattern.callback
        view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
        if view_class is not None and _is_project_class(view_class):
            yield view_class


def api_view_classes():
    """Every project view class served by the URLconf: the router's viewsets, the reports, the auth views."""
    return list(dict.fromkeys(_view_classes(get_resolver().url_patterns)))


@pytest.mark.parametrize("view_class", api_view_classes(), ids=lambda cls: cls.__name__)
def test_no_method_is_overridden_twice_along_a_views_bases(view_class):
    assert methods_defined_twice(view_class) == {}


def test_the_rule_catches_a_mixin_and_the_base_overriding_the_same_method():
    class UpdateMixin:
        def update(self, request, *args, **kwargs):
            return super().update(request, *args, **kwargs)

    class Base(UpdateMixin, CRMModelViewSet):
        def update(self, request, *args, **kwargs):
            return super().update(request, *args, **kwargs)

    class Resource(Base):
        def get_queryset(self):
            return super().get_queryset()

    UpdateMixin.__module__ = Base.__module__ = Resource.__module__ = "core.api.example"

    assert methods_defined_twice(Resource)["update"] == ["Base", "UpdateMixin", "CRMModelViewSet"]
    assert "get_queryset" not in methods_defined_twice(Resource)


# Read-only feeds on the router: no writes, so none of the base viewset's write path (they
# still authenticate, throttle, scope and answer in the envelope through DRF's settings).
READ_ONLY_FEEDS = {EventViewSet}
# Each user's own messages: read, and marked read (no create, update or delete; no history or events).
PERSONAL_FEEDS = {NotificationViewSet}
# The log of bulk changes: read, and undone (the undo writes through core.changesets, not through the viewset).
CHANGE_LOGS = {ChangesetViewSet}
# Lists the CRM computes, read and decided on (a pair of possible duplicates: "not a duplicate").
REVIEW_QUEUES = {DuplicateCandidateViewSet}


def test_every_resource_on_the_router_is_a_crm_viewset_and_checked_above():
    assert router.registry
    for _prefix, viewset, _basename in router.registry:
        assert (
            issubclass(viewset, CRMModelViewSet)
            or viewset in READ_ONLY_FEEDS | PERSONAL_FEEDS | CHANGE_LOGS | REVIEW_QUEUES
        ), viewset
        assert viewset in api_view_classes()


def test_read_only_feeds_take_no_writes():
    for viewset in READ_ONLY_FEEDS | PERSONAL_FEEDS | CHANGE_LOGS | REVIEW_QUEUES:
        assert not {"create", "update", "partial_update", "destroy"} & set(dir(viewset)), viewset


def test_every_report_endpoint_is_a_scoped_report_view():
    reports = [cls for cls in api_view_classes() if cls.__name__.endswith("ReportView")]

    assert {cls.__name__ for cls in reports} == {
        "PipelineReportView",
        "ForecastReportView",
        "ActivityReportView",
        "FollowUpsReportView",
    }
    assert all(issubclass(cls, ScopedReportView) for cls in reports)
