"""Autosave of text as the author types, with the version every save carries, and the live
blame checker under each narrative field."""

import pytest

from incidents.models import Answer, BlameDismissal, GuidedQuestion, Incident
from tests.factories import make_incident, make_user

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}


@pytest.fixture
def draft(user):
    return make_incident(title="Checkout errors", status=Incident.Status.DRAFT, authors=[user])


def autosave(client, incident, name, text, version, **extra):
    return client.post(
        f"/incidents/{incident.slug}/edit/autosave/",
        {"autosave": name, name: text, "version": version, **extra},
        headers=HX,
    )


def test_autosave_saves_one_field_and_says_when(client_logged_in, draft):
    """200 with "Saved HH:MM", the new version in a header; only that field changes."""
    response = autosave(client_logged_in, draft, "impact", "Half of **checkouts** failed", 1)
    assert response.status_code == 200
    assert b"Saved <time" in response.content
    assert response["X-Debrief-Version"] == "2"
    draft.refresh_from_db()
    assert draft.impact == "Half of **checkouts** failed"
    assert draft.impact_html == "<p>Half of <strong>checkouts</strong> failed</p>"
    assert draft.title == "Checkout errors" and draft.version == 2


def test_consecutive_autosaves_chain_versions(client_logged_in, draft):
    """Each save is based on the version the previous one returned."""
    version = 1
    for text in ("a", "ab", "abc"):
        response = autosave(client_logged_in, draft, "lessons", text, version)
        version = int(response["X-Debrief-Version"])
    draft.refresh_from_db()
    assert (draft.lessons, draft.version) == ("abc", 4)


def test_stale_autosave_is_refused_with_409_and_their_text(client_logged_in, draft):
    """Based on an old version: 409, their text shown (escaped), nothing overwritten."""
    Incident.objects.filter(pk=draft.pk).update(version=3, impact="<i>their</i> text")
    response = autosave(client_logged_in, draft, "impact", "my text", 1)
    body = response.content.decode()
    assert response.status_code == 409
    assert "someone else changed this write-up" in body
    assert "&lt;i&gt;their&lt;/i&gt; text" in body
    assert 'name="overwrite_version" value="3"' in body
    draft.refresh_from_db()
    assert draft.impact == "<i>their</i> text" and draft.version == 3


def test_keep_mine_overwrites_with_the_version_seen(client_logged_in, draft):
    """The explicit "Keep mine" carries the current version and saves."""
    Incident.objects.filter(pk=draft.pk).update(version=3, impact="theirs")
    response = autosave(client_logged_in, draft, "impact", "mine", 1, overwrite_version=3)
    assert response.status_code == 200
    draft.refresh_from_db()
    assert (draft.impact, draft.version) == ("mine", 4)


def test_plain_client_gets_409_too(client_logged_in, draft):
    """Without htmx a stale save is also a 409 (for scripts and plain clients)."""
    Incident.objects.filter(pk=draft.pk).update(version=2)
    response = client_logged_in.post(
        f"/incidents/{draft.slug}/edit/autosave/",
        {"autosave": "impact", "impact": "x", "version": 1},
    )
    assert response.status_code == 409


def test_autosave_answers_carry_the_version_too(client_logged_in, draft):
    """A guided answer is part of the write-up: saved with a version check, created once."""
    question = GuidedQuestion.objects.filter(is_active=True).first()
    name = f"answer-{question.pk}"
    assert autosave(client_logged_in, draft, name, "The alert.", 1).status_code == 200
    assert autosave(client_logged_in, draft, name, "The alert, late.", 2).status_code == 200
    answer = Answer.objects.get(incident=draft, question=question)
    assert answer.text == "The alert, late."
    stale = autosave(client_logged_in, draft, name, "stale", 1)
    assert stale.status_code == 409 and b"The alert, late." in stale.content
    assert Answer.objects.get(pk=answer.pk).text == "The alert, late."


@pytest.mark.parametrize("name", ["title", "version", "slug", "answer-999999", "answer-x", ""])
def test_autosave_only_for_text_fields(client_logged_in, draft, name):
    """Anything but the narrative fields is refused with 400 and changes nothing."""
    response = autosave(client_logged_in, draft, name, "x", 1)
    assert response.status_code == 400
    draft.refresh_from_db()
    assert draft.version == 1


def test_autosave_is_for_authors_only(client_logged_in):
    incident = make_incident()
    assert autosave(client_logged_in, incident, "impact", "x", 1).status_code == 403


def test_autosave_needs_post(client_logged_in, draft):
    assert client_logged_in.get(f"/incidents/{draft.slug}/edit/autosave/").status_code == 405


def test_text_fields_autosave_and_check_on_the_page(client_logged_in, draft):
    """Each narrative textarea posts itself after a pause and has its findings panel."""
    body = client_logged_in.get(f"/incidents/{draft.slug}/edit/reflect/").content.decode()
    for name in ("went_well", "lucky", "lessons"):
        assert f'data-autosave="{name}"' in body
        assert f'id="findings-{name}"' in body
    assert 'hx-trigger="input changed delay:1s, autosave-retry"' in body
    assert "js/write.js" in body and "css/write.css" in body


# Blame checker ------------------------------------------------------------------------------


def check(client, incident, field, text, source=None):
    source = source or field
    return client.post(
        f"/incidents/{incident.slug}/edit/blame/",
        {"field": field, "source": source, source: text},
        headers=HX,
    )


def test_live_check_returns_findings_escaped_and_highlighted(client_logged_in, draft):
    """The phrase is marked, the author's other text escaped, the suggestion beside it."""
    response = check(client_logged_in, draft, "impact", "<script>x</script> It was human error.")
    body = response.content.decode()
    assert response.status_code == 200
    assert "<mark>human error</mark>" in body
    assert "<script>" not in body and "&lt;script&gt;" in body
    assert "Name the condition" in body or "condition" in body
    assert "Not blame here — dismiss" in body


def test_live_check_of_neutral_text_is_empty(client_logged_in, draft):
    response = check(client_logged_in, draft, "impact", "The deploy failed; the alert fired.")
    assert response.status_code == 200 and b"<mark>" not in response.content


def test_live_check_knows_the_people_involved(client_logged_in, user):
    """First names of authors and team members are recognised as people."""
    colleague = make_user(first_name="Priya")
    incident = make_incident(status="draft", authors=[user, colleague])
    response = check(client_logged_in, incident, "narrative", "Priya ignored the alert.")
    assert b"<mark>" in response.content


def test_live_check_for_rows_and_action_items(client_logged_in, draft):
    """Row text fields are checked under their kind's name; titles with action-item rules."""
    response = check(client_logged_in, draft, "action", "Double-check before deleting",
                     source="new-title")  # fmt: skip
    assert b"<mark>" in response.content
    response = check(client_logged_in, draft, "timeline", "Bob forgot to renew it",
                     source="new-text")  # fmt: skip
    assert b"<mark>" in response.content


def test_live_check_on_the_new_page(client_logged_in):
    """Before the write-up exists the summary is checked too (nothing to dismiss yet)."""
    response = client_logged_in.post(
        "/incidents/new/blame/",
        {"field": "summary", "source": "summary", "summary": "human error"},
        headers=HX,
    )
    assert b"<mark>human error</mark>" in response.content
    assert b"dismiss" not in response.content


def test_live_check_rejects_unknown_fields(client_logged_in, draft):
    assert check(client_logged_in, draft, "password", "x").status_code == 400


def test_live_check_is_for_editors_only(client_logged_in):
    assert check(client_logged_in, make_incident(), "impact", "x").status_code == 403


def test_dismiss_stores_the_phrase_and_the_finding_stays_gone(client_logged_in, draft, user):
    """Dismissed once, the finding does not come back for that text in that field."""
    text = "It was Human  Error, again."
    found = check(client_logged_in, draft, "impact", text).content.decode()
    assert "<mark>Human  Error</mark>" in found
    response = client_logged_in.post(
        f"/incidents/{draft.slug}/edit/blame/dismiss/",
        {"dismiss_field": "impact", "dismiss_rule": "human_error",
         "dismiss_phrase": "Human  Error", "field": "impact", "source": "impact",
         "impact": text},
        headers=HX,
    )  # fmt: skip
    assert response.status_code == 200 and b"<mark>" not in response.content
    dismissal = BlameDismissal.objects.get()
    assert (dismissal.field, dismissal.phrase, dismissal.dismissed_by) == (
        "impact", "human error", user,
    )  # fmt: skip
    assert b"<mark>" not in check(client_logged_in, draft, "impact", "human error").content
    # Another field still gets the advice.
    assert b"<mark>" in check(client_logged_in, draft, "lessons", "human error").content
    # Dismissing twice is fine.
    again = client_logged_in.post(
        f"/incidents/{draft.slug}/edit/blame/dismiss/",
        {"dismiss": "impact|human_error|human error"},
    )
    assert again.status_code == 302 and BlameDismissal.objects.count() == 1


def test_dismiss_redirect_stays_on_this_site(client_logged_in, draft):
    response = client_logged_in.post(
        f"/incidents/{draft.slug}/edit/blame/dismiss/",
        {"dismiss": "impact|human_error|human error", "next": "https://evil.example/"},
    )
    assert response["Location"] == f"/incidents/{draft.slug}/edit/impact/"


def test_dismiss_needs_a_finding(client_logged_in, draft):
    response = client_logged_in.post(f"/incidents/{draft.slug}/edit/blame/dismiss/", {})
    assert response.status_code == 400
    assert not BlameDismissal.objects.exists()
