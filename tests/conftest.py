import pytest
from knox.models import get_token_model
from rest_framework.test import APIClient

from tests.factories import ManagerFactory, StaffFactory


@pytest.fixture
def user(db):
    """A sales manager (not a superuser): sees and changes everything, like the API's first clients."""
    return ManagerFactory()


@pytest.fixture
def staff_user(db):
    return StaffFactory(username="staff")


@pytest.fixture
def token(user):
    _, raw = get_token_model().objects.create(user)
    return raw


@pytest.fixture
def anon_client():
    return APIClient()


@pytest.fixture
def api(token):
    """An API client that sends a real bearer token, as integrations do."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client
