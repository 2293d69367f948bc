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
        domain = domain_of(cell_text(row.get("domain")))
        if not domain:
            return None
        return self.scoped(Company.objects.filter(domain=domain)).first()

    def before_save_instance(self, instance, row, **kwargs):
        # New companies go into the importing user's book.
        if instance.pk is None and instance.owner_id is None and self.user is not None:
            instance.owner = self.user
        super().before_save_instance(instance, row, **kwargs)
