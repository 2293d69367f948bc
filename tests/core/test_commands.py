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
