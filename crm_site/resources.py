"""Shared pieces of the admin's import/export resources (django-import-export)."""

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from import_export import fields, resources

from crm_site import access


def cell_text(value):
    """A spreadsheet cell as stripped text ("" when empty); XLSX gives whole numbers as floats."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def parse_id(value):
    """The integer id in a cell, ``None`` for an empty one; ValidationError otherwise."""
    text = cell_text(value)
    if not text:
        return None
    if not text.isdigit():
        raise ValidationError({"id": _("The id must be a whole number, got “%(value)s”.") % {"value": text}})
    return int(text)


class CRMModelResource(resources.ModelResource):
    """A resource whose rows update the record with their ``id``; rows without one create records.

    An id that matches no record is an error for that row (a typo must not create a record).
    Optional text columns left empty are stored as NULL, like the API does.
    """

    nullable_text_fields = ()
    # Columns a file must have; without them every row would be skipped or fail alike.
    required_columns = ()

    created_at = fields.Field(attribute="created_at", column_name="created_at", readonly=True)

    def __init__(self, user=None, **kwargs):
        # The admin user importing or exporting: rows reach only the records in their scope.
        self.user = user
        super().__init__(**kwargs)

    def get_queryset(self):
        return self.scoped(super().get_queryset())

    def scoped(self, queryset):
        return queryset if self.user is None else access.scope(queryset, self.user)

    class Meta:
        # Unchanged rows are reported as skipped; model validation (choices, lengths,
        # the unique email) runs on every row, so errors show per row in the preview.
        skip_unchanged = True
        report_skipped = True
        clean_model_instances = True

    def before_import(self, dataset, **kwargs):
        missing = [column for column in self.required_columns if column not in (dataset.headers or [])]
        if missing:
            raise ValueError(
                _(
                    "The file lacks the column(s) %(missing)s. Its first row must name the columns, such as: %(expected)s."
                )
                % {
                    "missing": ", ".join(missing),
                    "expected": ", ".join(field.column_name for field in self.get_import_fields()),
                }
            )
        super().before_import(dataset, **kwargs)

    def get_instance(self, instance_loader, row):
        pk = parse_id(row.get("id"))
        if pk is None:
            return self.find_instance(row)
        instance = self.get_queryset().filter(pk=pk).first()
        if instance is None:
            raise ValidationError({"id": _("No record with id %(id)s.") % {"id": pk}})
        return instance

    def find_instance(self, row):
        """The record a row without an id stands for, if any."""
        return None

    def import_field(self, field, instance, row, is_m2m=False, **kwargs):
        # The id picks the record (get_instance); an empty one must not blank the matched record's.
        if field.attribute == "id":
            return
        super().import_field(field, instance, row, is_m2m, **kwargs)

    def before_save_instance(self, instance, row, **kwargs):
        super().before_save_instance(instance, row, **kwargs)
        if instance.pk is None and self.user is not None:
            instance.created_by = self.user

    def import_instance(self, instance, row, **kwargs):
        super().import_instance(instance, row, **kwargs)
        for name in self.nullable_text_fields:
            if getattr(instance, name) == "":
                setattr(instance, name, None)
