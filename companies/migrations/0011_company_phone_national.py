"""The national significant number of each company's phone number (the digits of its E.164 form after the
country code), which search looks a number written without its country code up in: filled from the
E.164 forms 2,000 rows at a time, each batch committed as it goes, then indexed without holding writes to
the companies on PostgreSQL (``core.indexes.AddIndexConcurrently``)."""

from django.db import migrations, models

from core.indexes import AddIndexConcurrently
from core.phones import fill_national_numbers


def fill(apps, schema_editor):
    fill_national_numbers(apps.get_model("companies", "Company"), schema_editor.connection.alias)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("companies", "0010_name_key_cut_to_its_length")]

    operations = [
        migrations.AddField(
            model_name="company",
            name="phone_national",
            field=models.CharField(
                blank=True, editable=False, max_length=16, null=True, verbose_name="phone (national number)"
            ),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=False),
        AddIndexConcurrently(
            model_name="company",
            index=models.Index(fields=["phone_national"], name="company_phone_national_idx"),
        ),
    ]
