"""Company name keys fold full-width and half-width forms (NFKC) too: "ＡＢＣ科技" is "abc科技"."""

from django.db import migrations


def refold(apps, schema_editor):
    from companies.names import name_key

    Company = apps.get_model("companies", "Company")
    changed = []
    for company in Company.objects.only("pk", "name", "name_key").iterator(chunk_size=2000):
        key = name_key(company.name)
        if key != company.name_key:
            company.name_key = key
            changed.append(company)
    Company.objects.bulk_update(changed, ["name_key"], batch_size=2000)


class Migration(migrations.Migration):
    dependencies = [("companies", "0006_company_tags")]

    operations = [migrations.RunPython(refold, migrations.RunPython.noop)]
