"""The index behind the pipeline report's lost deals by reason (the lost deals' reasons, values and ids: an
index-only scan on PostgreSQL), built without holding writes to the opportunities on PostgreSQL
(``core.indexes.AddIndexConcurrently``; plainly on SQLite)."""

from django.db import migrations, models

from core.indexes import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("opportunities", "0015_opportunity_lost_reason")]

    operations = [
        AddIndexConcurrently(
            model_name="opportunity",
            index=models.Index(
                condition=models.Q(("stage", "lost")),
                fields=["lost_reason"],
                include=["value", "id"],
                name="opportunity_lost_reason_idx",
            ),
        ),
    ]
