"""Model fields that several apps declare alike."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


def created_by_field():
    """Who created the record (set by the API and the admin); kept empty when that user is deleted."""
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
