"""Autosaves write with a conditional UPDATE (no model signals); edit history must still show
them, one entry per person per editing session rather than one per pause in typing."""

import pytest

from incidents.models import Incident
from tests.factories import make_incident, make_user

pytestmark = pytest.mark.django_db


def autosave(client, incident, text, version):
    return client.post(
        f"/incidents/{incident.slug}/edit/autosave/",
        {"autosave": "impact", "impact": text, "version": version},
        headers={"HX-Request": "true"},
    )


def test_autosave_is_recorded_in_history_with_the_author(client):
    author = make_user()
    incident = make_incident(authors=[author], impact="before")
    client.force_login(author)
    before = Incident.history.filter(id=incident.pk).count()
    assert autosave(client, incident, "after the first pause", 1).status_code == 200
    records = Incident.history.filter(id=incident.pk).order_by("-history_id")
    assert records.count() == before + 1
    assert records[0].impact == "after the first pause"
    assert records[0].history_user_id == author.pk


def test_repeated_autosaves_fold_into_one_history_entry(client):
    author = make_user()
    incident = make_incident(authors=[author], impact="before")
    client.force_login(author)
    before = Incident.history.filter(id=incident.pk).count()
    for version, text in enumerate(["one", "one two", "one two three"], start=1):
        assert autosave(client, incident, text, version).status_code == 200
    records = Incident.history.filter(id=incident.pk).order_by("-history_id")
    assert records.count() == before + 1
    assert records[0].impact == "one two three"


def test_history_page_shows_the_autosaved_change(client):
    author = make_user()
    incident = make_incident(authors=[author], impact="before")
    client.force_login(author)
    autosave(client, incident, "words typed in the guided flow", 1)
    body = client.get(f"/incidents/{incident.slug}/history/").content.decode()
    assert "words typed in the guided flow" in body
