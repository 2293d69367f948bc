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


EXTERNAL_ID_MAX_LENGTH = 255


def external_id_field():
    """The record's id in another system, so an integration can mirror it (``upsert`` in a batch).

    Unique when set (the model declares the constraint); empty is NULL, so records without one never clash.
    """
    return models.CharField(
        _("external id"),
        max_length=EXTERNAL_ID_MAX_LENGTH,
        null=True,
        blank=True,
        help_text=_("The record's id in another system (unique when set)."),
    )


def external_id_unique(model_name):
    return models.UniqueConstraint(fields=["external_id"], name=f"{model_name}_external_id_unique")


def custom_fields_field():
    """The values of the model's custom fields, ``{key: value}`` (``core/customfields.py`` checks them).

    Indexed on PostgreSQL by a GIN index (``jsonb_path_ops``) that the app's migration creates.
    """
    # Not editable: forms show a typed field per definition instead (core/admin/customfields.py).
    # The database default too, so that rows written in bulk by raw SQL (seed_demo, old backups) get {}.
    return models.JSONField(_("custom fields"), default=dict, db_default={}, blank=True, editable=False)


def custom_fields_index_sql(table, name):
    """(create, drop) statements of the GIN index that answers ``?cf_<key>=`` filters on PostgreSQL."""
    return (
        f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" USING gin ("custom_fields" jsonb_path_ops)',
        f'DROP INDEX IF EXISTS "{name}"',
    )
