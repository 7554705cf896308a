import pytest

from tests.factories import make_user


@pytest.fixture
def user(db):
    return make_user(username="alice", first_name="Alice")


@pytest.fixture
def client_logged_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def staff(db):
    return make_user(username="staffer", is_staff=True)
