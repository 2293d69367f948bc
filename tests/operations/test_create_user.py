"""create_user: a given password passes the same validators as any other."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection

from tests.concurrency import in_turn

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("1", "This password is too short. It must contain at least 8 characters."),
        ("12345678", "This password is entirely numeric."),
        ("password", "This password is too common."),
        ("newcomer-1", "The password is too similar to the username."),
    ],
)
def test_create_user_refuses_a_weak_password_and_says_why(password, message):
    with pytest.raises(CommandError) as refused:
        call_command("create_user", "newcomer", "--role", "rep", "--password", password, stdout=StringIO())

    assert str(refused.value).startswith("The password was refused:")
    assert f"- {message}" in str(refused.value)
    assert not get_user_model().objects.filter(username="newcomer").exists()


def test_create_user_lists_every_reason_a_password_is_refused():
    with pytest.raises(CommandError) as refused:
        call_command("create_user", "newcomer", "--role", "rep", "--password", "1", stdout=StringIO())

    assert "- This password is too short." in str(refused.value)
    assert "- This password is entirely numeric." in str(refused.value)


def test_create_user_judges_the_password_against_the_email_too():
    with pytest.raises(CommandError, match="too similar to the email address"):
        call_command(
            "create_user",
            "nc",
            "--role",
            "rep",
            "--email",
            "zebrafinch@example.com",
            "--password",
            "zebrafinch",
            stdout=StringIO(),
        )


def test_create_user_accepts_a_strong_password():
    call_command("create_user", "newcomer", "--role", "rep", "--password", "correct horse battery", stdout=StringIO())

    assert get_user_model().objects.get(username="newcomer").check_password("correct horse battery")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["x" * 151], "- username: Ensure this value has at most 150 characters (it has 151)."),
        (["alice smith"], "- username: Enter a valid username."),
        (["alice", "--email", "not-an-email"], "- email: Enter a valid email address."),
    ],
    ids=["too-long", "space", "bad-email"],
)
def test_create_user_refuses_a_username_or_email_the_admin_would_refuse(args, message):
    # Written unchecked, a 151-character name failed on PostgreSQL with a DataError traceback (SQLite
    # stored it), and an address that is none took every reminder and digest email to an error.
    with pytest.raises(CommandError) as refused:
        call_command("create_user", *args, "--role", "rep", stdout=StringIO())

    assert str(refused.value).startswith("The user was refused:")
    assert message in str(refused.value)
    assert not get_user_model().objects.exists()


def test_create_user_refuses_a_name_taken_in_another_case():
    call_command("create_user", "alice", "--role", "rep", stdout=StringIO())

    with pytest.raises(CommandError, match='A user named "alice" already exists'):
        call_command("create_user", "Alice", "--role", "rep", stdout=StringIO())
    assert list(get_user_model().objects.values_list("username", flat=True)) == ["alice"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="two connections at once: PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_create_user_refuses_a_name_taken_by_another_run_meanwhile():
    # Another run creates the name after this one's check and before its insert: a clear refusal, no traceback.
    errors = in_turn(
        lambda: get_user_model().objects.create_user("ann"),
        lambda: call_command("create_user", "ann", "--role", "rep", stdout=StringIO()),
        atomic=False,
    )

    assert len(errors) == 1 and isinstance(errors[0], CommandError), errors
    assert 'A user named "ann" already exists' in str(errors[0])
    assert get_user_model().objects.filter(username="ann").count() == 1
