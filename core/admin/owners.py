"""The owner filter of the CRM's lists: "mine", "no owner", each rep or manager, or everyone.

Reps land on their own records (the filter's default for them is "mine"); managers and
read-only users land on everything. One filter class per owner path
(``owner_filter("customer__owner")``), so that every list reads the same way.
"""

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core import access

ALL, MINE, NONE = "all", "mine", "none"


def owners():
    """Who may own records: the active managers and reps (and superusers), by username."""
    roles = [access.ROLE_GROUPS[access.MANAGER], access.ROLE_GROUPS[access.REP]]
    return (
        get_user_model()
        .objects.filter(Q(is_superuser=True) | Q(groups__name__in=roles), is_active=True)
        .distinct()
        .order_by("username")
    )


def default_owner_choice(user):
    """Where a list opens: a rep's own records, everything for the others."""
    return ALL if access.sees_everything(user) else MINE


class OwnerListFilter(admin.SimpleListFilter):
    """Filter a list by the owner at ``owner_path`` (set by :func:`owner_filter`)."""

    title = _("owner")
    parameter_name = "owner"
    owner_path = None
    offers_none = True  # False where every record has one (a task's assignee)

    def __init__(self, request, params, model, model_admin):
        self.user = request.user
        super().__init__(request, params, model, model_admin)

    def value(self):
        return super().value() or default_owner_choice(self.user)

    def has_output(self):
        return True

    def lookups(self, request, model_admin):
        choices = [(MINE, _("Mine"))]
        if self.offers_none:
            choices.append((NONE, _("No owner")))
        if access.sees_everything(request.user):
            choices += [(str(pk), name) for pk, name in owners().values_list("pk", "username")]
        return choices

    def choices(self, changelist):
        value = self.value()
        yield {
            "selected": value == ALL,
            "query_string": changelist.get_query_string({self.parameter_name: ALL}),
            "display": _("All I may see"),
        }
        for lookup, title in self.lookup_choices:
            yield {
                "selected": value == str(lookup) or (value == "me" and lookup == MINE),
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        value = self.value()
        if value == ALL:
            return queryset
        if value in (MINE, "me"):
            return queryset.filter(**{self.owner_path: request.user})
        if value == NONE:
            return queryset.filter(**{f"{self.owner_path}__isnull": True})
        if value.isdecimal() and len(value) < 19:
            return queryset.filter(**{f"{self.owner_path}_id": int(value)})
        raise IncorrectLookupParameters(f"owner={value!r}")


def owner_filter(owner_path, title=None, parameter_name=None, offers_none=True):
    """An :class:`OwnerListFilter` over ``owner_path`` (``"owner"``, ``"customer__owner"``, ``"assignee"``)."""
    attributes = {"owner_path": owner_path, "offers_none": offers_none}
    if title is not None:
        attributes["title"] = title
    if parameter_name is not None:
        attributes["parameter_name"] = parameter_name
    return type(f"OwnerListFilter_{owner_path}", (OwnerListFilter,), attributes)
