import pytest
from knox.models import get_token_model
from rest_framework.test import APIClient

from tests.factories import member


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
