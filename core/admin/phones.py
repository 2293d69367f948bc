"""The admin's flag on phone numbers that are not valid numbers (kept as entered; see ``core/phones.py``)."""

from django.contrib import admin
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class PhoneValidityFilter(admin.SimpleListFilter):
    title = _("phone number")
    parameter_name = "phone"

    def lookups(self, request, model_admin):
        return [("valid", _("Valid")), ("invalid", _("Not a valid number")), ("none", _("None"))]

    def queryset(self, request, queryset):
        given = ~Q(phone__isnull=True) & ~Q(phone="")
        if self.value() == "valid":
            return queryset.filter(phone_e164__isnull=False)
        if self.value() == "invalid":
            return queryset.filter(given, phone_e164__isnull=True)
        if self.value() == "none":
            return queryset.filter(Q(phone__isnull=True) | Q(phone=""))
        return queryset


class PhoneCheckMixin:
    """A model admin column: ✔ for a valid number, ✘ for one that is not, empty without a number."""

    @admin.display(description=_("valid phone"), boolean=True, ordering="phone_e164")
    def phone_valid(self, obj):
        if not obj.phone:
            return None
        return obj.phone_e164 is not None
