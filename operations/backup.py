"""Online backup and restore of the whole database, for ``manage.py backup`` and ``restore``.

- SQLite: the sqlite3 online-backup API, in one step, so the copy is one
  consistent snapshot even while the server keeps writing (WAL lets it).
- PostgreSQL: ``pg_dump`` in custom format (it reads in one snapshot), and
  ``pg_restore --clean`` in a single transaction.
"""

import os
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

from django.db import connections
from django.db.migrations.loader import MigrationLoader

from operations.sqlite_files import integrity_problem, open_untrusted, schema_objects

SQLITE_MAGIC = b"SQLite format 3\x00"
# Tables every backup of this application has (the ones ``migrate`` creates first).
_APPLICATION_TABLES = ("django_migrations", "auth_user", "customers_customer")
PGDUMP_MAGIC = b"PGDMP"


class BackupError(Exception):
    pass


def _vendor(alias):
    vendor = connections[alias].vendor
    if vendor not in ("sqlite", "postgresql"):
        raise BackupError(f"Backups of {vendor} databases are not supported here; use the database's own tools.")
    return vendor


def _file_kind(path):
    with open(path, "rb") as handle:
        head = handle.read(16)
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PGDUMP_MAGIC):
        return "postgresql"
    return None


def backup(path, alias="default", *, force=False):
    """Write a consistent copy of database ``alias`` to ``path`` (through a temporary file).

    An existing file is replaced only with ``force``; a folder never is.
    """
    path = Path(path)
    if path.is_dir():
        raise BackupError(f"{path} is a folder; give the name of the file to write, e.g. {path / 'crm.backup'}")
    if path.resolve() in _database_files(alias):
        # Renamed over the live database, the copy would cut off every process that has it open.
        raise BackupError(f"{path} is a file of the database itself; write the backup to another file.")
    if path.exists() and not force:
        raise BackupError(f"{path} exists already; choose another name or pass --force to overwrite it.")
    if not path.parent.is_dir():
        raise BackupError(f"The folder {path.parent} does not exist.")
    _outside_transaction(connections[alias])
    # A name of its own, beside the target (so that the rename is atomic): not one an interrupted backup
    # left behind, nor the one another backup to the same name is writing.
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.", suffix=".partial")
    os.close(handle)
    partial = Path(partial)
    try:
        if _vendor(alias) == "sqlite":
            _backup_sqlite(alias, partial)
        else:
            _run(
                _pg_command("pg_dump", alias, "--format=custom", "--no-owner", "--no-privileges", f"--file={partial}"),
                alias,
            )
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path.stat().st_size


def _database_files(alias):
    """The files of an SQLite database (its own, the WAL and the others beside it); none for PostgreSQL."""
    settings = connections[alias].settings_dict
    name = str(settings["NAME"])
    if _vendor(alias) != "sqlite" or name == ":memory:" or name.startswith("file:"):
        return set()
    live = Path(name).resolve()
    return {live, *(live.with_name(live.name + suffix) for suffix in ("-wal", "-shm", "-journal", "-writelock"))}


def _outside_transaction(connection):
    # The online backup needs a read snapshot that our own open write transaction would block.
    if connection.in_atomic_block:
        raise BackupError("Backup and restore cannot run inside a transaction.")
    connection.ensure_connection()


def _backup_sqlite(alias, target):
    connection = connections[alias]
    copy = sqlite3.connect(target)
    try:
        # pages=-1: one step, under one read transaction, so the copy is one moment of
        # the database. A stepwise backup would restart on every concurrent write.
        connection.connection.backup(copy, pages=-1)
        copy.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file
        result = copy.execute("PRAGMA quick_check").fetchone()[0]
    finally:
        copy.close()
    if result != "ok":
        raise BackupError(f"The copy failed its integrity check: {result}")


def check_backup(path, alias="default"):
    """Refuse a file that is not a backup of this kind of database."""
    path = Path(path)
    if not path.is_file():
        raise BackupError(f"{path} does not exist or is not a file.")
    if path.resolve() in _database_files(alias):
        # Read as a backup (immutable, without its WAL), it is the database as of its last checkpoint.
        raise BackupError(f"{path} is a file of the database itself; name a file written by 'manage.py backup'.")
    kind = _file_kind(path)
    vendor = _vendor(alias)
    if kind is None:
        raise BackupError(f"{path} is not a backup made by 'manage.py backup'.")
    if kind != vendor:
        raise BackupError(f"{path} is a {kind} backup, but this database is {vendor}.")
    if kind == "sqlite":
        applied = _check_sqlite_backup(path, alias)
    else:
        _check_pg_backup(path, alias)
        applied = _pg_backup_migrations(path, alias)
    _check_version(path, applied)


def _check_version(path, applied):
    """Refuse a backup made by a newer version of the application: one that records migrations of this
    application's apps that this code does not have. Restored, its schema would be one the code does not
    know, and no ``migrate`` of this code could bring it back. (An older backup is restored, then migrated.)"""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    known = set(loader.disk_migrations)
    known.update(name for squashed in loader.replacements.values() for name in squashed.replaces)
    unknown = sorted(
        f"{app}.{name}" for app, name in applied if app in loader.migrated_apps and (app, name) not in known
    )
    if unknown:
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise BackupError(
            f"{path} was made by a newer version of the application: it records migrations this version lacks "
            f"({', '.join(unknown[:5])}{more}). Restore it with that version or a later one; nothing was changed."
        )


def _pg_backup_migrations(path, alias):
    """``{(app, name)}`` of the ``django_migrations`` rows in a pg_dump archive (its COPY data)."""
    text = _run(
        _pg_command(
            "pg_restore", alias, "--data-only", "--table=django_migrations", "--file=-", str(path), database=False
        ),
        alias,
    ).stdout
    applied, columns = set(), None
    for line in text.splitlines():
        if columns is None:
            if line.startswith("COPY ") and "django_migrations" in line.split("(", 1)[0]:
                columns = [name.strip() for name in line.split("(", 1)[1].split(")", 1)[0].split(",")]
            continue
        if line == "\\.":
            break
        row = dict(zip(columns, line.split("\t"), strict=False))
        applied.add((row.get("app"), row.get("name")))
    return applied


# Kinds of dump entries that run code or rewrite queries. This application's schema has only the
# functions and triggers its migrations create (those the live database has too, by name); a backup
# carrying any other was changed after it was made: restoring it would run that code on every write.
_PG_REFUSED = (
    "EVENT TRIGGER",
    "TRIGGER",
    "FUNCTION",
    "PROCEDURE",
    "AGGREGATE",
    "RULE",
    "POLICY",
    "OPERATOR",
    "CAST",
    "TRANSFORM",
    "PROCEDURAL LANGUAGE",
    "MATERIALIZED VIEW",
    "VIEW",
    "FOREIGN TABLE",
    "SERVER",
    "USER MAPPING",
    "PUBLICATION",
    "SUBSCRIPTION",
    "DEFAULT ACL",
)


def _check_pg_backup(path, alias):
    listing = _run(_pg_command("pg_restore", alias, "--list", str(path), database=False), alias).stdout
    connection = connections[alias]
    with connection.cursor() as cursor:
        cursor.execute("SELECT extname FROM pg_extension")
        extensions = {row[0] for row in cursor.fetchall()}
        cursor.execute(
            "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE n.nspname = current_schema()"
        )
        own = {("FUNCTION", row[0]) for row in cursor.fetchall()}
        cursor.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
        own |= {("TRIGGER", row[0]) for row in cursor.fetchall()}
    refused = []
    for line in listing.splitlines():
        if not line.strip() or line.startswith(";"):
            continue
        # "<id>; <oid> <oid> <KIND> <schema> <name> <owner>", where KIND may be several words.
        entry = line.split(None, 3)[-1] if len(line.split(None, 3)) == 4 else ""
        kind = next((kind for kind in _PG_REFUSED if entry.startswith(kind + " ")), None)
        if kind is None and entry.startswith("EXTENSION "):
            name = entry.split()[2] if len(entry.split()) > 2 else ""
            if name not in extensions:
                kind = "EXTENSION"
        if kind is not None and (kind, _entry_name(kind, entry)) not in own:
            refused.append(" ".join(entry.split()[:4]))
    if refused:
        raise BackupError(
            f"{path} holds a schema this application never creates ({', '.join(refused[:5])}); it is not restored."
        )


def _entry_name(kind, entry):
    """The object's name in a ``pg_restore --list`` entry: "FUNCTION public f() owner", "TRIGGER public table t owner"."""
    words = entry.split()
    if kind == "FUNCTION" and len(words) > 2:
        return words[2].split("(")[0]
    if kind == "TRIGGER" and len(words) > 3:
        return words[3]
    return None


def _check_sqlite_backup(path, alias):
    """Refuse a damaged file, another application's database, or one carrying views or triggers of its own;
    the ``(app, name)`` of the migrations it records.

    A restore copies the file's schema with its data: a trigger added to a backup
    would run inside the live database on every later write.
    """
    try:
        source = open_untrusted(path, max_value_bytes=None)
    except sqlite3.Error as exc:
        raise BackupError(f"{path} cannot be read: {exc}") from exc
    try:
        problem = integrity_problem(source)
        tables = {row[0] for row in source.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        extra = schema_objects(source, "view", "trigger")
        page_size = source.execute("PRAGMA page_size").fetchone()[0]
        ours = set(_APPLICATION_TABLES) <= tables
        applied = set(source.execute("SELECT app, name FROM django_migrations")) if ours else set()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} cannot be read: {exc}") from exc
    finally:
        source.close()
    if problem:
        raise BackupError(f"{path} is damaged (SQLite integrity check: {problem}).")
    missing = sorted(set(_APPLICATION_TABLES) - tables)
    if missing:
        raise BackupError(f"{path} is not a backup of this application (it lacks the table(s) {', '.join(missing)}).")
    connection = connections[alias]
    connection.ensure_connection()
    live_page_size = connection.connection.execute("PRAGMA page_size").fetchone()[0]
    if page_size != live_page_size:
        # SQLite's backup API cannot change the page size of a database in WAL mode (the live one is).
        raise BackupError(
            f"{path} has pages of {page_size} bytes and this database of {live_page_size}: SQLite copies a "
            "backup only into a database of the same page size. With the application stopped, put the file "
            "in place of the database instead (and remove the database's -wal and -shm files)."
        )
    extra -= schema_objects(connection.connection, "view", "trigger")
    if extra:
        names = ", ".join(sorted(f"{kind} {name}" for kind, name, _sql in extra))
        raise BackupError(f"{path} holds a schema this application never creates ({names}); it is not restored.")
    return applied


def restore(path, alias="default"):
    """Replace everything in database ``alias`` by the backup at ``path``."""
    check_backup(path, alias)
    connection = connections[alias]
    _outside_transaction(connection)
    if _vendor(alias) == "sqlite":
        source = open_untrusted(path, max_value_bytes=None)
        try:
            # Copied page by page under the live database's write lock: other
            # connections see the old data or the restored data, never a mix.
            source.backup(connection.connection, pages=-1)
        finally:
            source.close()
        connection.close()
    else:
        # Our own connection must not hold locks on the tables pg_restore drops.
        connection.close()
        _run(
            _pg_command(
                "pg_restore",
                alias,
                "--clean",
                "--if-exists",
                "--no-owner",
                "--no-privileges",
                "--single-transaction",
                "--exit-on-error",
                str(path),
            ),
            alias,
        )


def _pg_command(program, alias, *args, database=True):
    executable = shutil.which(program)
    if executable is None:
        raise BackupError(
            f"{program} is not on PATH. Install the PostgreSQL client tools of the server's major version "
            "(Debian/Ubuntu: apt-get install postgresql-client)."
        )
    command = [executable, *args]
    if database:
        command.append(f"--dbname={connections[alias].settings_dict['NAME']}")
    return command


def _pg_environment(alias):
    settings = connections[alias].settings_dict
    env = dict(os.environ)
    for variable, value in (
        ("PGHOST", settings.get("HOST")),
        ("PGPORT", settings.get("PORT")),
        ("PGUSER", settings.get("USER")),
        ("PGPASSWORD", settings.get("PASSWORD")),
        ("PGSSLMODE", settings.get("OPTIONS", {}).get("sslmode")),
    ):
        if value:
            env[variable] = str(value)
    return env


def _run(command, alias):
    result = subprocess.run(command, env=_pg_environment(alias), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        name = Path(command[0]).name
        raise BackupError(f"{name} failed (exit {result.returncode}): {result.stderr.strip() or result.stdout.strip()}")
    return result
