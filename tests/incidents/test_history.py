"""The edit history: every change to an incident and its children, as a per-field diff, and
the /incidents/<slug>/history/ page."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from incidents import undo
from incidents.lifecycle import submit_for_review
from incidents.models import Incident
from incidents.review import add_comment, incident_history, record_history, set_visibility
from tests import factories
from tests.factories import make_entry, make_factor, make_incident, make_team

pytestmark = pytest.mark.django_db


def make_user(**overrides):
    """A user without a password: these tests sign in with force_login, and skipping the
    password hash makes them several times faster."""
    return factories.make_user(**({"password": None} | overrides))


def changes_of(event):
    return {c.label: (c.old, c.new) for c in event.changes}


def test_field_changes_show_who_when_old_and_new():
    author = make_user(first_name="Ana", last_name="Lima")
    incident = make_incident(authors=[author], title="Checkout down", severity="SEV3")
    incident.title, incident.severity = "Checkout slow", "SEV2"
    incident._history_user = author
    incident.save()
    event = incident_history(incident)[0]
    assert event.who == author
    assert event.action == "changed"
    assert event.subject == "Write-up"
    assert changes_of(event)["Title"] == ("Checkout down", "Checkout slow")
    assert changes_of(event)["Severity"] == ("SEV3 — minor", "SEV2 — major")


def test_text_changes_are_a_word_diff():
    incident = make_incident(impact="About 30% of checkouts failed for 40 minutes.")
    incident.impact = "About 35% of checkouts failed for 40 minutes."
    incident.save()
    change = next(c for c in incident_history(incident)[0].changes if c.label == "Impact")
    assert ("del", "30%") in change.segments
    assert ("ins", "35%") in change.segments


def test_long_unchanged_text_is_shortened_around_the_change():
    words = " ".join(f"w{i}" for i in range(200))
    incident = make_incident(narrative=words)
    incident.narrative = words.replace("w100", "CHANGED")
    incident.save()
    change = next(c for c in incident_history(incident)[0].changes if c.label == "Narrative")
    rendered = "".join(text for _, text in change.segments)
    assert "CHANGED" in rendered and "…" in rendered
    assert len(rendered) < 200


def test_children_and_many_to_many_changes_are_in_the_history():
    author, reviewer = make_user(), make_user(username="rita", first_name="Rita")
    team = make_team(name="Payments")
    incident = make_incident(authors=[author])
    entry = make_entry(incident, text="Alert fired", kind="alert")
    factor = make_factor(incident, evidence=[entry])
    incident.reviewers.add(reviewer)
    set_visibility(incident=incident, by=author, visibility="teams", teams=[team])
    events = incident_history(incident)
    subjects = [e.subject for e in events]
    assert any(s.startswith("Timeline entry") for s in subjects)
    assert any(s.startswith("Contributing factor") for s in subjects)
    readers = next(e for e in events if e.reason.startswith("Readers"))
    assert changes_of(readers)["Visibility"] == ("Everyone", "Only chosen teams")
    assert changes_of(readers)["Visible teams"] == ("—", "Payments")
    reviewers = next(e for e in events if "Reviewers" in changes_of(e))
    assert changes_of(reviewers)["Reviewers"] == ("—", "Rita")
    created_factor = next(
        e for e in events if e.subject.startswith("Contributing factor") and e.action == "created"
    )
    assert factor.pk and created_factor.link.endswith(f"#factor-{factor.pk}")


def test_deleted_child_shows_as_deleted_without_a_link():
    author = make_user()
    incident = make_incident(authors=[author])
    entry = make_entry(incident)
    undo.soft_delete(entry, by=author)
    deleted = next(e for e in incident_history(incident) if e.action == "deleted")
    assert deleted.who == author
    assert deleted.link == ""
    assert deleted.reason.startswith("Moved to the trash")


def test_lifecycle_moves_appear_with_their_reason():
    author = make_user()
    incident = make_incident(status="draft", authors=[author])
    submit_for_review(incident=incident, by=author)
    event = incident_history(incident)[0]
    assert event.reason == "Submitted for review"
    assert changes_of(event)["Status"] == ("Draft", "In review")


def test_record_history_records_a_queryset_update():
    """Writes that send no signals (save_if_version) can still be recorded."""
    author = make_user()
    incident = make_incident(authors=[author], summary="Old")
    Incident.objects.filter(pk=incident.pk).update(summary="New")
    record = record_history(incident, by=author, reason="Guided write-up: summary")
    assert record.summary == "New" and record.history_user == author
    event = incident_history(incident)[0]
    assert changes_of(event)["Summary"] == ("Old", "New")


def test_autosaves_coalesce_into_one_change_per_session():
    """record_history(coalesce_within=…) updates the person's recent record instead of
    adding one per autosave; someone else's edit, or a pause, starts a new one."""
    author, other = make_user(), make_user()
    incident = make_incident(authors=[author], summary="v0")
    window = dt.timedelta(minutes=10)
    before = Incident.history.filter(id=incident.pk).count()
    for text in ("v1", "v2", "v3"):
        Incident.objects.filter(pk=incident.pk).update(summary=text)
        record_history(incident, by=author, reason="Autosave", coalesce_within=window)
    assert Incident.history.filter(id=incident.pk).count() == before + 1
    assert changes_of(incident_history(incident)[0])["Summary"] == ("v0", "v3")
    Incident.objects.filter(pk=incident.pk).update(summary="v4")
    record_history(incident, by=other, reason="Autosave", coalesce_within=window)
    assert Incident.history.filter(id=incident.pk).count() == before + 2
    Incident.history.filter(id=incident.pk).update(history_date=timezone.now() - window * 2)
    record_history(incident, by=other, reason="Autosave", coalesce_within=window)
    assert Incident.history.filter(id=incident.pk).count() == before + 3


def test_history_of_records_made_before_tracking_is_marked():
    """Demo data is bulk-created (no history); its first recorded save is marked as such."""
    incident = make_incident()
    Incident.history.filter(id=incident.pk).delete()
    incident.title = "Renamed"
    incident.save()
    event = incident_history(incident)[0]
    assert event.first_known and event.changes == []


def test_history_page_full_and_partial(client):
    author = make_user()
    incident = make_incident(authors=[author], title="Cache stampede")
    incident.title = "Cache stampede at noon"
    incident._history_user = author
    incident.save()
    client.force_login(author)
    url = reverse("incident_history", args=[incident.slug])
    page = client.get(url)
    assert page.status_code == 200
    assert b"<html" in page.content
    assert b"Cache stampede at noon" in page.content
    partial = client.get(url, headers={"HX-Request": "true"})
    assert partial.status_code == 200
    assert b"<html" not in partial.content
    assert b'id="history"' in partial.content
    assert "HX-Request" in page["Vary"]


def test_history_page_has_a_fixed_number_of_queries(client, django_assert_max_num_queries):
    """History of any size costs the same few queries (one UNION for all the models)."""
    author = make_user()
    incident = make_incident(authors=[author])
    client.force_login(author)
    url = reverse("incident_history", args=[incident.slug])

    def count():
        with django_assert_max_num_queries(12) as captured:
            assert client.get(url).status_code == 200
        return len(captured.captured_queries)

    few = count()
    entries = [make_entry(incident) for _ in range(10)]
    for entry in entries[:5]:
        entry.at += dt.timedelta(minutes=1)
        entry.save()
    make_factor(incident, evidence=entries[:3])
    add_comment(incident=incident, by=author, body="Note", anchor="impact")
    incident.reviewers.add(make_user())
    assert count() == few


def test_history_is_private_like_its_incident(client):
    """An outsider gets 404 for the history of a write-up they may not read."""
    incident = make_incident(status="draft")
    client.force_login(make_user())
    assert client.get(reverse("incident_history", args=[incident.slug])).status_code == 404
