"""A customer belongs to at most one company (a foreign key); the company text stays, as its name.

The text column ``company`` keeps its name in the database (the search indexes of
0004 cover it) and becomes the field ``company_name``; the link is a new column
``company_id``. Nothing is rewritten here: 0008 creates the companies and links.
"""

import django.db.models.deletion
from django.db import migrations, models

TEXT = {
    "blank": True,
    "db_column": "company",
    "editable": False,
    "max_length": 200,
    "null": True,
    "verbose_name": "company name",
}


class Migration(migrations.Migration):
    dependencies = [
        ("companies", "0001_initial"),
        ("customers", "0006_customer_external_id"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RenameField("customer", "company", "company_name"),
                migrations.AlterField("customer", "company_name", models.CharField(**TEXT)),
                migrations.RenameField("historicalcustomer", "company", "company_name"),
                migrations.AlterField("historicalcustomer", "company_name", models.CharField(**TEXT)),
            ],
        ),
        migrations.AddField(
            model_name="customer",
            name="company",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="customers",
                to="companies.company",
                verbose_name="company",
            ),
        ),
        migrations.AddField(
            model_name="historicalcustomer",
            name="company",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="companies.company",
                verbose_name="company",
            ),
        ),
    ]
