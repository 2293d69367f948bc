"""The admin's shared bases: ModelAdmin behaviour (``base``) and import/export file formats (``formats``)."""

from django.utils.translation import gettext_noop

# Labels of Django's admin templates that Django's own Chinese catalogue lacks (the app list's
# column headings, read out by screen readers): listed here so that our catalogue carries them.
DJANGO_ADMIN_LABELS = (
    gettext_noop("Model name"),
    gettext_noop("Add link"),
    gettext_noop("Change or view list link"),
)

# Texts of django-import-export's pages that its own Chinese catalogue leaves untranslated, likewise.
IMPORT_EXPORT_LABELS = (
    gettext_noop("Select all"),
    gettext_noop('Select at least 1 field for "%(resource_name)s" to export'),
    gettext_noop("Value could not be parsed."),
)
