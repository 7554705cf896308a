"""Login throttling and behaviour when the database fails."""

import pytest
from django.db import OperationalError

from tests.factories import make_user

pytestmark = pytest.mark.django_db


def test_ten_failures_lock_the_username_and_address_with_a_clear_message(client):
    make_user(username="victim", password="right-password-123")
    for _ in range(10):
        client.post("/accounts/login/", {"username": "victim", "password": "wrong"})
    response = client.post(
        "/accounts/login/", {"username": "victim", "password": "right-password-123"}
    )
    assert response.status_code == 429
    assert b"Too many failed sign-ins" in response.content
    assert "_auth_user_id" not in client.session


def test_lockout_is_per_username(client):
    make_user(username="victim", password="right-password-123")
    make_user(username="bystander", password="right-password-123")
    for _ in range(10):
        client.post("/accounts/login/", {"username": "victim", "password": "wrong"})
    response = client.post(
        "/accounts/login/", {"username": "bystander", "password": "right-password-123"}
    )
    assert response.status_code == 302


def test_a_few_failures_then_success_signs_in(client):
    make_user(username="typo", password="right-password-123")
    for _ in range(3):
        client.post("/accounts/login/", {"username": "typo", "password": "wrong"})
    response = client.post(
        "/accounts/login/", {"username": "typo", "password": "right-password-123"}
    )
    assert response.status_code == 302


def test_database_outage_gives_a_friendly_503(client_logged_in, monkeypatch):
    """No traceback, a retry hint, and a page that renders without the database."""
    from incidents import views

    def down(*args, **kwargs):
        raise OperationalError("could not connect to server: Connection refused")

    monkeypatch.setattr(views, "get_visible_incident", down)
    response = client_logged_in.get("/incidents/anything/")
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert b"briefly unavailable" in response.content
    assert b"Traceback" not in response.content


def test_programming_errors_are_not_disguised_as_outages(client_logged_in, monkeypatch):
    from incidents import views

    def bug(*args, **kwargs):
        raise OperationalError("no such column: incidents_incident.nope")

    monkeypatch.setattr(views, "get_visible_incident", bug)
    client_logged_in.raise_request_exception = False
    response = client_logged_in.get("/incidents/anything/")
    assert response.status_code == 500


def test_a_read_only_postgresql_gives_the_503_page_not_a_500(client_logged_in, monkeypatch):
    """PostgreSQL raises InternalError for writes to a read-only server (a replica after a
    fail-over, a full disk); that is an outage to wait out, not a bug."""
    from django.db import InternalError

    from incidents import views

    def read_only(*args, **kwargs):
        raise InternalError("cannot execute UPDATE in a read-only transaction")

    monkeypatch.setattr(views, "get_visible_incident", read_only)
    response = client_logged_in.get("/incidents/anything/")
    assert response.status_code == 503
    assert b"briefly unavailable" in response.content
