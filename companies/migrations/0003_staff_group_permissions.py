"""The staff groups' permissions on companies.

Reps add and change companies (theirs, and those of their customers) but do not
delete them, as they do not delete customers; managers do everything; the
read-only group views.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GRANTS = {
    "Sales rep": ["view", "add", "change"],
    "Sales manager": ["view", "add", "change", "delete"],
    "Read-only": ["view"],
}


def grant(apps, schema_editor):
    app_config = apps.get_app_config("companies")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, actions in GRANTS.items():
        group, _ = Group.objects.get_or_create(name=name)
        codenames = [f"{action}_company" for action in actions]
        group.permissions.add(*Permission.objects.filter(content_type__app_label="companies", codename__in=codenames))


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    for group in apps.get_model("auth", "Group").objects.filter(name__in=list(GRANTS)):
        group.permissions.remove(*Permission.objects.filter(content_type__app_label="companies"))


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("customers", "0003_staff_groups"),
        ("companies", "0002_search_indexes"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
