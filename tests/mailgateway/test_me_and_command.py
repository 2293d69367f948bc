"""``bcc_address`` in ``GET /api/auth/me``, and ``manage.py run_mail_gateway`` as an operator starts it."""

import os
import signal
import smtplib
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import Group
from knox.models import get_token_model
from rest_framework.test import APIClient

from mailgateway.models import GatewayAddress
from tests.factories import UserFactory
from tests.migrated import OWN_SQLITE_FILE

pytestmark = pytest.mark.django_db


def me(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {get_token_model().objects.create(user)[1]}")
    return client.get("/api/auth/me").json()["data"]


def member(name, group):
    user = UserFactory(username=name)
    user.groups.add(Group.objects.get(name=group))
    return user


def test_each_writer_has_a_private_stable_address(settings):
    settings.MAIL_GATEWAY_DOMAIN = "in.crm.test"
    rep, other = member("rep", "Sales rep"), member("other", "Sales rep")

    first = me(rep)["bcc_address"]
    assert first == f"{GatewayAddress.objects.get(user=rep).token}@in.crm.test"
    assert me(rep)["bcc_address"] == first
    assert me(other)["bcc_address"] not in (None, first)
    assert len(first.split("@")[0]) == 25


def test_no_address_without_a_domain_or_for_readers(settings):
    settings.MAIL_GATEWAY_DOMAIN = ""
    assert me(member("rep", "Sales rep"))["bcc_address"] is None
    settings.MAIL_GATEWAY_DOMAIN = "in.crm.test"
    assert me(member("reader", "Read-only"))["bcc_address"] is None
    assert me(UserFactory(username="norole"))["bcc_address"] is None
    assert not GatewayAddress.objects.exists()


def _command_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    return {**env, "DJANGO_SETTINGS_MODULE": "crm_site.settings.local", "DJANGO_SECRET_KEY": "x" * 50, **extra}


def test_the_command_refuses_to_start_without_a_domain(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "run_mail_gateway", "--port", "0"],
        cwd=django_settings.BASE_DIR,
        env=_command_env(DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "Set DJANGO_MAIL_GATEWAY_DOMAIN" in result.stderr


@OWN_SQLITE_FILE
def test_the_command_serves_smtp_and_stops_on_sigterm(tmp_path, migrated_sqlite):
    database = migrated_sqlite(tmp_path / "gateway.db")
    env = _command_env(DATABASE_URL=database, DJANGO_MAIL_GATEWAY_DOMAIN="in.crm.test")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_mail_gateway", "--host", "127.0.0.1", "--port", "0"],
        cwd=django_settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        line = process.stdout.readline()
        assert "Mail gateway listening on 127.0.0.1:" in line, line
        port = int(line.split("127.0.0.1:")[1].split()[0])
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.ehlo()
            client.mail("someone@example.com")
            code, text = client.rcpt("nobody@in.crm.test")
            assert (code, text) == (550, b"5.1.1 No such gateway address")
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
        assert process.returncode == 0, output
        assert "Mail gateway stopped." in output
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
