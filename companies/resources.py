from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core.resources import CRMModelResource, cell_text, tags_field

from .imports import COLUMNS
from .models import Company
from .names import domain_of
from .serializers import CompanySerializer


class CompanyResource(CRMModelResource):
    """Companies in and out. Without an id, a row updates the company with its domain (written any way)."""

    serializer_class = CompanySerializer
    required_columns = ("name",)
    header_aliases = COLUMNS

    tags = tags_field()

    class Meta:
        model = Company
        fields = (
            "id",
            "name",
            "domain",
            "website",
            "phone",
            "address",
            "industry",
            "size",
            "notes",
            "created_at",
            "external_id",
            "tags",
        )
        export_order = fields
        name = _("Companies")

    def find_instance(self, row):
        # By external_id first, then by domain, in the order of the API's upserts.
        found = super().find_instance(row)
        domain = domain_of(cell_text(row.get("domain")))
        if found is not None or not domain:
            return found
        return self.named_record("domain", domain, self.scoped(Company.objects.filter(domain=domain)))

    def record_keys(self, dataset):
        keys = super().record_keys(dataset)
        domains = {domain_of(text) for text in self.column_cells(dataset, "domain")} - {""}
        if domains:
            keys["domain"] = (domains, Q(domain__in=domains))
        return keys

    def before_save_instance(self, instance, row, **kwargs):
        # New companies go into the importing user's book.
        if instance.pk is None and instance.owner_id is None and self.user is not None:
            instance.owner = self.user
        super().before_save_instance(instance, row, **kwargs)
