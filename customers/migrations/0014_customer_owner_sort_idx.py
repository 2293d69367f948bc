"""The index behind the customer list's sort by owner, built without holding writes to the customers on
PostgreSQL (``core.indexes.AddIndexConcurrently``; plainly on SQLite)."""

from django.db import migrations, models

from core.indexes import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("customers", "0013_dashboard_indexes")]

    operations = [
        AddIndexConcurrently(
            model_name="customer",
            index=models.Index(fields=["owner", "-id"], name="customer_owner_sort_idx"),
        ),
    ]
