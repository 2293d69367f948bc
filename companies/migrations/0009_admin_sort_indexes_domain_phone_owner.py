"""The indexes behind the company list's sorts by domain, valid phone and owner, built without holding
writes to the companies on PostgreSQL (``core.indexes.AddIndexConcurrently``; plainly on SQLite)."""

from django.db import migrations, models

from core.indexes import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("companies", "0008_admin_sort_indexes")]

    operations = [
        AddIndexConcurrently(
            model_name="company",
            index=models.Index(fields=["domain", "-id"], name="company_domain_sort_idx"),
        ),
        AddIndexConcurrently(
            model_name="company",
            index=models.Index(fields=["phone_e164", "-id"], name="company_phone_valid_sort_idx"),
        ),
        AddIndexConcurrently(
            model_name="company",
            index=models.Index(fields=["owner", "-id"], name="company_owner_sort_idx"),
        ),
    ]
