from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from core.models import IdempotencyKey
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_purge_deletes_only_expired_keys(capsys):
    user = UserFactory()
    IdempotencyKey.objects.create(user=user, key="fresh", fingerprint="a" * 64, response_status=201)
    old = IdempotencyKey.objects.create(user=user, key="old", fingerprint="b" * 64, response_status=201)
    IdempotencyKey.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=24, minutes=1))

    call_command("purge_idempotency_keys", "--dry-run")
    assert "1 expired idempotency keys would be deleted" in capsys.readouterr().out
    assert IdempotencyKey.objects.count() == 2

    call_command("purge_idempotency_keys")
    assert "Deleted 1 expired" in capsys.readouterr().out
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["fresh"]


def test_periodic_purge_drops_the_same_keys_as_the_command():
    from core.tasks import purge_expired

    user = UserFactory()
    IdempotencyKey.objects.create(user=user, key="fresh", fingerprint="a" * 64, response_status=201)
    old = IdempotencyKey.objects.create(user=user, key="old", fingerprint="b" * 64, response_status=201)
    IdempotencyKey.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=25))
    assert purge_expired.call_local()["idempotency_keys"] == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["fresh"]


def test_worker_refuses_to_start_when_jobs_run_inline(capsys):
    # The test settings run jobs inline (CRM_QUEUE_IMMEDIATE): a worker would wait for nothing.
    with pytest.raises(SystemExit) as info:
        call_command("worker")
    assert info.value.code == 2
    assert "immediate mode" in capsys.readouterr().err
