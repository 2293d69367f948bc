"""Company name keys longer than their column (a name that NFKC makes longer, kept by SQLite, which does not
enforce the length) are cut to it, as ``companies.names.name_key`` cuts them now."""

from django.db import migrations
from django.db.models.functions import Length

MAX_LENGTH = 200


def cut(apps, schema_editor):
    Company = apps.get_model("companies", "Company")
    changed = []
    long_keys = Company.objects.annotate(key_length=Length("name_key")).filter(key_length__gt=MAX_LENGTH)
    for company in long_keys.only("pk", "name_key").iterator(chunk_size=2000):
        company.name_key = " ".join(company.name_key[:MAX_LENGTH].split())
        changed.append(company)
    Company.objects.bulk_update(changed, ["name_key"], batch_size=2000)


class Migration(migrations.Migration):
    dependencies = [("companies", "0009_admin_sort_indexes_domain_phone_owner")]

    operations = [migrations.RunPython(cut, migrations.RunPython.noop)]
