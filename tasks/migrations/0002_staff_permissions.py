"""The staff groups' rights on tasks: reps and managers run them, read-only users see them."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GRANTS = {
    "Sales rep": ["view", "add", "change", "delete"],
    "Sales manager": ["view", "add", "change", "delete"],
    "Read-only": ["view"],
}


def grant(apps, schema_editor):
    app_config = apps.get_app_config("tasks")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, actions in GRANTS.items():
        group = Group.objects.filter(name=name).first()
        if group is None:
            continue
        codenames = [f"{action}_task" for action in actions]
        group.permissions.add(*Permission.objects.filter(content_type__app_label="tasks", codename__in=codenames))


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    permissions = Permission.objects.filter(content_type__app_label="tasks", codename__endswith="_task")
    for group in Group.objects.filter(name__in=list(GRANTS)):
        group.permissions.remove(*permissions)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("customers", "0003_staff_groups"),
        ("tasks", "0001_initial"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
