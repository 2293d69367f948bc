"""The admin's shared bases: ModelAdmin behaviour (``base``) and import/export file formats (``formats``)."""

from django.utils.translation import gettext_noop

# Labels of Django's admin templates that Django's own Chinese catalogue lacks (the app list's
# column headings, read out by screen readers): listed here so that our catalogue carries them.
DJANGO_ADMIN_LABELS = (
    gettext_noop("Model name"),
    gettext_noop("Add link"),
    gettext_noop("Change or view list link"),
)
