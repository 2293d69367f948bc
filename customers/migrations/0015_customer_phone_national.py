"""The national significant number of each customer's phone number (the digits of its E.164 form after the
country code), which search looks a number written without its country code up in: filled from the
E.164 forms 2,000 rows at a time, each batch committed as it goes, then indexed without holding writes to
the customers on PostgreSQL (``core.indexes.AddIndexConcurrently``)."""

from django.db import migrations, models

from core.indexes import AddIndexConcurrently
from core.phones import fill_national_numbers


def fill(apps, schema_editor):
    fill_national_numbers(apps.get_model("customers", "Customer"), schema_editor.connection.alias)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("customers", "0014_customer_owner_sort_idx")]

    operations = [
        migrations.AddField(
            model_name="customer",
            name="phone_national",
            field=models.CharField(
                blank=True, editable=False, max_length=16, null=True, verbose_name="phone (national number)"
            ),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=False),
        AddIndexConcurrently(
            model_name="customer",
            index=models.Index(fields=["phone_national"], name="customer_phone_national_idx"),
        ),
    ]
