"""/preferences/: turn reminders off and choose the time zone."""

import pytest

from incidents.models import Profile

pytestmark = pytest.mark.django_db


def test_preferences_page_shows_current_values(client_logged_in, user):
    response = client_logged_in.get("/preferences/")
    body = response.content.decode()
    assert response.status_code == 200
    assert 'name="email_reminders"' in body and "checked" in body
    assert '<option value="Europe/Berlin">' in body
    assert user.email in body


def test_turn_reminders_off_and_change_zone(client_logged_in, user):
    response = client_logged_in.post(
        "/preferences/",
        {"timezone": "Europe/Berlin"},  # unticked checkbox: off
    )
    assert response.status_code == 302 and response["Location"] == "/preferences/"
    profile = Profile.objects.get(user=user)
    assert profile.email_reminders is False and profile.timezone == "Europe/Berlin"
    # Applied at once: the session carries the zone the middleware activates.
    assert client_logged_in.session["timezone"] == "Europe/Berlin"
    assert "Preferences saved." in client_logged_in.get("/preferences/").content.decode()


def test_unknown_zone_is_a_field_error_and_nothing_changes(client_logged_in, user):
    response = client_logged_in.post(
        "/preferences/", {"timezone": "Mars/Olympus", "email_reminders": "on"}
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert Profile.objects.get(user=user).timezone == "UTC"


def test_preferences_need_sign_in(client):
    assert client.get("/preferences/").status_code == 302
