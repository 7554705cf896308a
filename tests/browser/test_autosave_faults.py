"""The database stops accepting writes (read-only, disk full) while an author types, in Debian's
chromium: the field says "Not saved: the database is not accepting changes…", the typed text
stays in the box, typing goes on, and once writes work again the page saves it by itself."""

import time

import pytest
from django.db import OperationalError
from playwright.sync_api import expect

from incidents import write_views
from incidents.models import Incident
from tests.factories import make_incident, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-good-password-1"
MESSAGE = "Not saved: the database is not accepting changes. Your text is still here; we'll retry."


def sign_in(page, base, username):
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/")


def settles_on(read, expected, *, seconds=5.0):
    """Poll `read()` until it returns `expected` or time runs out; returns the last value."""
    deadline = time.monotonic() + seconds
    value = read()
    while value != expected and time.monotonic() < deadline:
        time.sleep(0.2)
        value = read()
    return value


def test_database_refusing_writes_keeps_the_text_and_retries(page, site, monkeypatch):
    """Autosave answered 503 by a full database: the message shows under the field, the text
    is untouched (also what is typed meanwhile), and the retry saves it once the database
    accepts writes again."""
    author = make_user(username="maria", first_name="Maria", password=PASSWORD)
    incident = make_incident(status=Incident.Status.DRAFT, authors=[author], lessons="")
    base = site()
    script_errors = []
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    sign_in(page, base, "maria")
    page.goto(f"{base}/incidents/{incident.slug}/edit/reflect/")

    refused = []

    def disk_full(**kwargs):
        # The live server runs in this process, so the stand-in reaches its request threads.
        refused.append(kwargs["text"])
        raise OperationalError("database or disk is full")

    monkeypatch.setattr(write_views, "save_text", disk_full)
    box = page.locator("#id_lessons")
    status = page.locator("#save-lessons")
    box.click()
    page.keyboard.type("Canaries for config.")
    expect(status).to_have_text(MESSAGE)
    expect(box).to_have_value("Canaries for config.")
    expect(page.locator("#unsaved-warning")).to_be_visible()
    assert refused and refused[-1] == "Canaries for config."

    page.keyboard.type(" And an alert on the fallback.")  # the author carries on typing
    full = "Canaries for config. And an alert on the fallback."
    assert settles_on(lambda: refused[-1], full) == full  # refused too
    expect(status).to_have_text(MESSAGE)
    expect(box).to_have_value(full)
    assert Incident.objects.get(pk=incident.pk).lessons == ""  # nothing half-saved

    monkeypatch.undo()  # the database accepts writes again
    expect(status.locator(".saved")).to_contain_text("Saved", timeout=15_000)  # the retry
    expect(page.locator("#unsaved-warning")).to_be_hidden()
    expect(box).to_have_value(full)
    assert settles_on(lambda: Incident.objects.get(pk=incident.pk).lessons, full) == full
    assert script_errors == []
