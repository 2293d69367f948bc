"""Every operator command explains itself with --help."""

import pytest
from django.core.management import CommandError, call_command


@pytest.mark.parametrize(
    ("command", "words"),
    [
        ("import_customers", ["--dry-run", "--update-existing", "--atomic", "line number"]),
        ("import_legacy", ["--dry-run", "twice changes nothing"]),
        (
            "import_from",
            ["hubspot", "pipedrive", "--dry-run", "--owner", "second run of the same files changes nothing"],
        ),
        ("backup", ["consistent backup", "pg_dump"]),
        ("restore", ["--yes", "ALL data"]),
        ("create_user", ["--role", "read_only", "printed once"]),
        ("worker", ["--workers", "REDIS_URL", "CRM_QUEUE_FILE", "Ctrl-C", "--no-periodic"]),
        ("run_all", ["Ctrl-C stops both", "manage.py worker", "--noreload"]),
    ],
)
def test_help(command, words, capsys):
    with pytest.raises(SystemExit) as info:
        call_command(command, "--help")
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert text.startswith("usage:") and command in text.split(" [")[0]
    for word in words:
        assert word in text


@pytest.mark.parametrize("value", ["0", "-1"])
@pytest.mark.parametrize("option", ["--max-rows", "--max-bytes"])
@pytest.mark.parametrize("command", ["import_customers", "import_companies", "import_from"])
def test_a_bound_that_is_no_positive_number_is_refused(command, option, value, tmp_path):
    # "-1" made every file "more than -1 rows"; "0" silently meant the default.
    path = tmp_path / "people.csv"
    path.write_text("name\nAda\n")
    files = ["hubspot", str(path)] if command == "import_from" else [str(path)]
    with pytest.raises(CommandError, match=f"argument {option}: invalid positive whole number value: '{value}'"):
        call_command(command, *files, option, value, "--dry-run")


@pytest.mark.parametrize("value", ["-3", "x"])
def test_a_count_of_skipped_rows_below_0_is_refused(value, tmp_path):
    # "-3" listed all but the last three skipped rows.
    with pytest.raises(CommandError, match=f"argument --show-skipped: invalid whole number value: '{value}'"):
        call_command("import_legacy", str(tmp_path / "old.sqlite"), "--show-skipped", value)
