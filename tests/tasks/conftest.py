import pytest
from django.contrib.auth.models import Group
from knox.models import get_token_model
from rest_framework.test import APIClient

from core.models import UserPreferences
from tests.factories import UserFactory


def member(username, group=None, time_zone=None, **fields):
    user = UserFactory(username=username, **fields)
    if group:
        user.groups.add(Group.objects.get(name=group))
    if time_zone:
        UserPreferences.objects.create(user=user, time_zone=time_zone)
    return user


def client_of(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {get_token_model().objects.create(user)[1]}")
    return client


@pytest.fixture
def rep(db):
    return member("rep", "Sales rep")


@pytest.fixture
def other_rep(db):
    return member("other", "Sales rep")


@pytest.fixture
def rep_api(rep):
    return client_of(rep)
