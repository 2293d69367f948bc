from django_filters import rest_framework as filters

from .models import Notification


class NotificationFilter(filters.FilterSet):
    # A choice rather than django-filter's boolean, which would take "maybe" as no filter at all.
    unread = filters.ChoiceFilter(
        choices=[("true", "true"), ("false", "false")],
        method="filter_unread",
        help_text="true: only unread ones; false: only read ones.",
    )
    kind = filters.CharFilter(max_length=64, help_text="Only notifications of this kind (such as task.reminder).")

    class Meta:
        model = Notification
        fields = ["unread", "kind"]

    def filter_unread(self, queryset, name, value):
        return queryset.filter(read_at__isnull=value == "true")
