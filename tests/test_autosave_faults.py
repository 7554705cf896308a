"""Database read-only or full while an author types: the autosave answers 503 with a short
message the page shows ("Not saved: the database is not accepting changes…"), never a 500 or a
traceback; nothing is written; the page keeps the text and retries (tests/browser/
test_autosave_faults.py shows that part in chromium). A database error that is a bug still
raises, so it is seen and fixed rather than retried forever."""

import pytest
from django.db import InternalError, OperationalError, ProgrammingError, connection, transaction
from django.test import Client

from incidents import write_views
from incidents.models import Incident
from tests.factories import make_incident, make_user

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
MESSAGE = "Not saved: the database is not accepting changes. Your text is still here; we'll retry."

# What the databases say when they refuse writes (SQLite, then PostgreSQL).
REFUSALS = [
    OperationalError("attempt to write a readonly database"),
    OperationalError("database or disk is full"),
    OperationalError("database is locked"),
    OperationalError(
        'could not extend file "base/16384/16402": No space left on device\n'
        "HINT:  Check free disk space."
    ),
    InternalError("cannot execute UPDATE in a read-only transaction"),
    OperationalError("server closed the connection unexpectedly"),
]


@pytest.fixture
def author():
    return make_user(username="maria", password=None)


@pytest.fixture
def draft(author):
    return make_incident(status=Incident.Status.DRAFT, authors=[author], impact="Saved before.")


@pytest.fixture
def client(author):
    client = Client(raise_request_exception=False)
    client.force_login(author)
    return client


def autosave(client, incident, text, *, headers=HX, name="impact", version=None):
    return client.post(
        f"/incidents/{incident.slug}/edit/autosave/",
        {"autosave": name, name: text, "version": incident.version if version is None else version},
        headers=headers,
    )


def assert_refused(response, incident, *, impact="Saved before."):
    body = response.content.decode()
    assert response.status_code == 503
    assert MESSAGE.replace("'", "&#x27;") in body
    assert "Traceback" not in body and len(body) < 300  # the status line, not an error page
    assert response["Retry-After"] == "5"
    assert response["X-Debrief-Not-Saved"] == "1"
    assert "X-Debrief-Version" not in response and "X-Debrief-Saved" not in response
    fresh = Incident.objects.get(pk=incident.pk)
    assert (fresh.impact, fresh.version) == (impact, incident.version)


@pytest.mark.parametrize("error", REFUSALS, ids=lambda e: str(e)[:30])
@pytest.mark.parametrize("headers", [HX, {}], ids=["htmx", "plain"])
def test_refused_write_answers_503_with_the_message(client, draft, monkeypatch, error, headers):
    """Each way a database refuses a write: 503, the message, nothing saved."""

    def refuse(**kwargs):
        raise error

    monkeypatch.setattr(write_views, "save_text", refuse)
    response = autosave(client, draft, "Typed while the disk was full.", headers=headers)
    assert_refused(response, draft)


def test_the_write_is_rolled_back_when_the_database_fails_half_way(client, draft, monkeypatch):
    """The failure comes after the text was written but before the history record: the text
    and the version are rolled back together, so the retry is based on the same version."""

    def history_fails(incident):
        raise OperationalError("database or disk is full")

    monkeypatch.setattr(write_views, "_record_edit", history_fails)
    assert_refused(autosave(client, draft, "Half-written text."), draft)
    monkeypatch.undo()
    retry = autosave(client, draft, "Half-written text.")  # what the page does next
    assert retry.status_code == 200 and retry["X-Debrief-Version"] == str(draft.version + 1)
    assert Incident.objects.get(pk=draft.pk).impact == "Half-written text."


def test_once_the_database_accepts_writes_the_same_save_succeeds(client, draft, monkeypatch):
    """The retry carries the same text and version and is saved."""
    monkeypatch.setattr(
        write_views,
        "save_text",
        lambda **kwargs: (_ for _ in ()).throw(OperationalError("database or disk is full")),
    )
    assert autosave(client, draft, "Kept in the box.").status_code == 503
    monkeypatch.undo()
    response = autosave(client, draft, "Kept in the box.")
    assert response.status_code == 200 and b"Saved <time" in response.content
    assert Incident.objects.get(pk=draft.pk).impact == "Kept in the box."


def test_read_only_database_for_real(client, draft):
    """Not a stand-in: the database itself in read-only mode (SQLite `query_only`, PostgreSQL
    a read-only transaction), rolled back afterwards."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            if connection.vendor == "sqlite":
                cursor.execute("PRAGMA query_only = ON")
            else:
                cursor.execute("SET transaction_read_only = on")  # undone by the rollback
        try:
            response = autosave(client, draft, "Typed while read-only.")
        finally:
            if connection.vendor == "sqlite":
                with connection.cursor() as cursor:
                    cursor.execute("PRAGMA query_only = OFF")
        transaction.set_rollback(True)
    assert_refused(response, draft)
    assert autosave(client, draft, "Typed while read-only.").status_code == 200


@pytest.mark.skipif("connection.vendor != 'sqlite'")
def test_full_sqlite_database_for_real(client, draft):
    """SQLite with no room to grow (`max_page_count` at its current size) refuses a long text
    with "database or disk is full"."""
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA page_count")
        pages = cursor.fetchone()[0]
        cursor.execute(f"PRAGMA max_page_count = {pages}")
    try:
        response = autosave(client, draft, "A long account of what happened. " * 2000)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA max_page_count = 1073741823")
    assert_refused(response, draft)


def test_a_database_error_that_is_a_bug_is_not_hidden(client, draft, monkeypatch):
    """A broken query is a 500 to fix, not a "try again later"."""

    def broken(**kwargs):
        raise ProgrammingError('column "impact_typo" does not exist')

    monkeypatch.setattr(write_views, "save_text", broken)
    response = autosave(client, draft, "Typed.")
    assert response.status_code == 500
    assert MESSAGE not in response.content.decode()


def test_a_conflict_is_still_a_conflict(client, draft):
    """The 503 path leaves the version check alone: a stale save is a 409."""
    Incident.objects.filter(pk=draft.pk).update(version=draft.version + 1)
    assert autosave(client, draft, "Stale.").status_code == 409


def test_the_classification_reads_the_drivers_codes():
    """Driver error codes decide when present (SQLite result codes, PostgreSQL SQLSTATEs);
    the message text only when there is none."""

    class Cause(Exception):
        pass

    def wrapped(message, **attributes):
        cause = Cause(message)
        for name, value in attributes.items():
            setattr(cause, name, value)
        error = OperationalError(message)
        error.__cause__ = cause
        return error

    refused = write_views._write_refused
    assert refused(wrapped("whatever", sqlite_errorcode=8))  # SQLITE_READONLY
    assert refused(wrapped("whatever", sqlite_errorcode=13))  # SQLITE_FULL
    assert refused(wrapped("whatever", sqlite_errorcode=(3 << 8) | 8))  # READONLY_CANTLOCK
    assert not refused(wrapped("readonly", sqlite_errorcode=1))  # SQLITE_ERROR: a bug
    assert refused(wrapped("whatever", sqlstate="25006"))  # read-only transaction
    assert refused(wrapped("whatever", sqlstate="53100"))  # disk full
    assert refused(wrapped("whatever", sqlstate="08006"))  # connection failure
    assert not refused(wrapped("read-only", sqlstate="42703"))  # undefined column: a bug
    assert not refused(OperationalError("no such column: impact_typo"))
