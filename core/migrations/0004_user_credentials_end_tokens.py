from django.conf import settings
from django.db import NotSupportedError, migrations

TRIGGER = "core_user_credentials_end_tokens"
FUNCTION = "core_end_user_tokens"


def _names(apps, schema_editor):
    quote = schema_editor.quote_name
    user = apps.get_model(settings.AUTH_USER_MODEL)._meta
    token = apps.get_model(getattr(settings, "KNOX_TOKEN_MODEL", "knox.AuthToken"))._meta
    return {
        "user_table": quote(user.db_table),
        "user_pk": quote(user.pk.column),
        "password": quote(user.get_field("password").column),
        "is_active": quote(user.get_field("is_active").column),
        "token_table": quote(token.db_table),
        "token_user": quote(token.get_field("user").column),
    }


def create_trigger(apps, schema_editor):
    # A bearer token ends when its user's password hash changes or the user is
    # deactivated, whatever writes the row: save(), QuerySet.update(), raw SQL.
    names = _names(apps, schema_editor)
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(
            f"CREATE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"DELETE FROM {names['token_table']} WHERE {names['token_user']} = OLD.{names['user_pk']}; "
            "RETURN NULL; END $$"
        )
        schema_editor.execute(
            f"CREATE TRIGGER {TRIGGER} AFTER UPDATE OF {names['password']}, {names['is_active']} "
            f"ON {names['user_table']} FOR EACH ROW WHEN ("
            f"OLD.{names['password']} IS DISTINCT FROM NEW.{names['password']} "
            f"OR (OLD.{names['is_active']} AND NOT NEW.{names['is_active']})"
            f") EXECUTE FUNCTION {FUNCTION}()"
        )
    elif vendor == "sqlite":
        schema_editor.execute(
            f"CREATE TRIGGER {TRIGGER} AFTER UPDATE OF {names['password']}, {names['is_active']} "
            f"ON {names['user_table']} FOR EACH ROW WHEN "
            f"OLD.{names['password']} IS NOT NEW.{names['password']} "
            f"OR (OLD.{names['is_active']} AND NOT NEW.{names['is_active']}) "
            f"BEGIN DELETE FROM {names['token_table']} WHERE {names['token_user']} = OLD.{names['user_pk']}; END"
        )
    else:
        raise NotSupportedError(f"Bearer token revocation has no trigger for the {vendor} database.")


def drop_trigger(apps, schema_editor):
    names = _names(apps, schema_editor)
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {TRIGGER} ON {names['user_table']}")
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}()")
    else:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {TRIGGER}")


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0003_rate_counter"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("knox", "0009_extend_authtoken_field"),
    ]

    operations = [migrations.RunPython(create_trigger, drop_trigger)]
