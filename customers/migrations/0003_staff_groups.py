"""Staff groups with model permissions: "Sales rep", "Sales manager" and "Read-only"."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

SALES_APPS = {
    "customers": ["customer"],
    "interactions": ["interaction"],
    "opportunities": ["opportunity", "stagechange"],
}

GROUPS = {
    # Reps run their week: they can fix and remove interactions and opportunities, but
    # deleting a customer (and everything under it) is a manager's call.
    "Sales rep": {
        "customer": ["view", "add", "change"],
        "interaction": ["view", "add", "change", "delete"],
        "opportunity": ["view", "add", "change", "delete"],
        "stagechange": ["view"],
    },
    "Sales manager": {
        "customer": ["view", "add", "change", "delete"],
        "interaction": ["view", "add", "change", "delete"],
        "opportunity": ["view", "add", "change", "delete"],
        "stagechange": ["view"],
    },
    "Read-only": {
        "customer": ["view"],
        "interaction": ["view"],
        "opportunity": ["view"],
        "stagechange": ["view"],
    },
}


def create_groups(apps, schema_editor):
    # Permissions are normally created after all migrations ran; make sure they exist now.
    for label in [*SALES_APPS, "auth", "contenttypes"]:
        app_config = apps.get_app_config(label)
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, grants in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        codenames = [f"{action}_{model}" for model, actions in grants.items() for action in actions]
        permissions = Permission.objects.filter(
            content_type__app_label__in=list(SALES_APPS), codename__in=codenames
        )
        group.permissions.add(*permissions)


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(GROUPS)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("customers", "0002_customer_history"),
        ("interactions", "0002_interaction_history"),
        ("opportunities", "0002_opportunity_history"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
