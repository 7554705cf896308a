"""The staff import page: upload, preview (counts, errors), confirm."""

import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from incidents import exchange_views
from incidents.models import Incident, Team
from tests.factories import make_incident, make_user
from tests.incidents.test_import import document, record

pytestmark = pytest.mark.django_db
URL = "/import/"


@pytest.fixture
def uploads(tmp_path, monkeypatch):
    monkeypatch.setattr(exchange_views, "upload_dir", lambda: tmp_path)
    return tmp_path


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def upload(content, name="incidents.json"):
    data = content if isinstance(content, bytes) else json.dumps(content).encode()
    return SimpleUploadedFile(name, data, content_type="application/json")


def post_preview(client, content, **fields):
    return client.post(URL, {"step": "preview", "file": upload(content), **fields})


def token_of(body: str) -> str:
    return re.search(r'name="token" value="([^"]+)"', body).group(1)


def test_only_staff_may_import(client, user):
    """Everyone else gets 403; signed-out people the login page."""
    assert client.get(URL).status_code == 302
    client.force_login(user)
    assert client.get(URL).status_code == 403
    assert client.post(URL, {"step": "preview", "file": upload(document())}).status_code == 403


def test_page_full_and_partial(staff_client):
    page = staff_client.get(URL).content.decode()
    assert "<h1>Import incidents</h1>" in page and 'id="import"' in page
    partial = staff_client.get(URL, headers={"HX-Request": "true"}).content.decode()
    assert 'id="import"' in partial and "<h1>" not in partial


def test_preview_shows_counts_and_writes_nothing_then_confirm_imports(staff_client, uploads):
    """Preview: counts and what will be created; confirm: written, file and session gone."""
    doc = document(record(), record(slug="second", title="Second"))
    response = post_preview(staff_client, doc, create_users="on")
    body = response.content.decode()
    assert response.status_code == 200
    assert "Preview of incidents.json" in body
    assert "<dt>Incidents</dt><dd>2</dd>" in body
    assert "<dt>Timeline entries</dt><dd>2</dd>" in body
    assert "New teams: platform" in body
    assert "Import 2 incidents</button>" in body
    assert not Incident.objects.exists()
    assert len(list(uploads.iterdir())) == 1

    response = staff_client.post(URL, {"step": "confirm", "token": token_of(body)})
    assert response.status_code == 302 and response["Location"] == "/incidents/"
    assert Incident.objects.count() == 2
    assert Team.objects.get().name == "platform"
    assert list(uploads.iterdir()) == []
    follow = staff_client.get("/incidents/").content.decode()
    assert "Imported 2 incidents (2 new, 0 replaced)" in follow


def test_preview_lists_errors_and_offers_no_confirm(staff_client, uploads):
    """Invalid records: every error by record and field, and no way to confirm."""
    doc = document(record(severity="SEV99"), record(slug="b", started_at="2026-03-02T09:12"))
    body = post_preview(staff_client, doc).content.decode()
    assert "2 problems in 2 incidents — nothing will be written" in body
    assert "incidents[0].severity: &#x27;SEV99&#x27; is not one of SEV1–SEV4" in body
    assert "incidents[1].started_at:" in body
    assert 'value="confirm"' not in body
    assert not Incident.objects.exists()


def test_preview_of_an_unreadable_file(staff_client, uploads):
    body = post_preview(staff_client, b'{"format": "debrief/1", "incidents": [').content.decode()
    assert "The file ends in the middle of the JSON document" in body
    assert 'value="confirm"' not in body


def test_missing_user_shows_the_option_to_create_them(staff_client, uploads):
    doc = document(record(authors=["ghost"]))
    body = post_preview(staff_client, doc).content.decode()
    assert "there is no user &#x27;ghost&#x27;" in body
    assert "1 person named in the file has no account here (ghost)" in body
    body = post_preview(staff_client, doc, create_users="on").content.decode()
    assert "New inactive accounts: ghost" in body


def test_confirm_with_htmx_redirects_the_browser(staff_client, uploads):
    body = post_preview(staff_client, document(record())).content.decode()
    response = staff_client.post(
        URL, {"step": "confirm", "token": token_of(body)}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == "/incidents/"
    assert Incident.objects.count() == 1


def test_cancel_discards_the_upload(staff_client, uploads):
    body = post_preview(staff_client, document(record())).content.decode()
    response = staff_client.post(URL, {"step": "cancel", "token": token_of(body)})
    assert response.status_code == 302
    assert list(uploads.iterdir()) == []
    assert not Incident.objects.exists()


def test_stale_or_foreign_token_writes_nothing(staff_client, uploads):
    """A confirm without this session's token (replayed, another tab) does nothing."""
    post_preview(staff_client, document(record()))
    body = staff_client.post(URL, {"step": "confirm", "token": "forged"}).content.decode()
    assert "That preview is no longer available" in body
    assert not Incident.objects.exists()


def test_database_changed_since_preview_shows_the_new_problem(staff_client, uploads):
    """Someone creates the slug between preview and confirm: the errors show, nothing is
    written."""
    body = post_preview(staff_client, document(record())).content.decode()
    make_incident(slug="search-stale-2026-03-02", title="Meanwhile")
    body = staff_client.post(URL, {"step": "confirm", "token": token_of(body)}).content.decode()
    assert "already exists" in body
    assert Incident.objects.get().title == "Meanwhile"


def test_oversized_upload_is_refused(staff_client, uploads, monkeypatch):
    monkeypatch.setattr(exchange_views, "IMPORT_MAX_BYTES", 100)
    body = post_preview(staff_client, document(record())).content.decode()
    assert "this page takes up to" in body
    assert list(uploads.iterdir()) == []


def test_preview_partial_for_htmx(staff_client, uploads):
    response = staff_client.post(
        URL,
        {"step": "preview", "file": upload(document(record()))},
        headers={"HX-Request": "true"},
    )
    body = response.content.decode()
    assert "Preview of incidents.json" in body and "<h1>" not in body
    assert response["Vary"].count("HX-Request") == 1


def test_non_staff_member_of_everything_still_cannot_import(client):
    person = make_user(password=None, is_superuser=False)
    client.force_login(person)
    assert client.get(URL).status_code == 403
