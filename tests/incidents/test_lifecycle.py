import pytest

from incidents.lifecycle import (
    TransitionError,
    publish,
    reopen,
    request_changes,
    submit_for_review,
)
from incidents.models import Incident
from tests.factories import make_incident, make_user

pytestmark = pytest.mark.django_db


def test_full_path_draft_to_published():
    author, reviewer = make_user(), make_user()
    incident = make_incident(status="draft", authors=[author], reviewers=[reviewer])
    submit_for_review(incident=incident, by=author)
    request_changes(incident=incident, by=reviewer)
    submit_for_review(incident=incident, by=author)
    publish(incident=incident, by=reviewer)
    incident.refresh_from_db()
    assert incident.status == "published"
    assert incident.published_at is not None


def test_outsider_cannot_submit_and_nothing_changes():
    incident = make_incident(status="draft")
    with pytest.raises(TransitionError, match="authors"):
        submit_for_review(incident=incident, by=make_user())
    assert Incident.objects.get(pk=incident.pk).status == "draft"


def test_author_cannot_publish_own_write_up():
    author = make_user()
    incident = make_incident(status="in_review", authors=[author])
    with pytest.raises(TransitionError, match="reviewer"):
        publish(incident=incident, by=author)


def test_draft_cannot_be_published_directly():
    reviewer = make_user()
    incident = make_incident(status="draft", reviewers=[reviewer])
    with pytest.raises(TransitionError, match="draft"):
        publish(incident=incident, by=reviewer)
    assert Incident.objects.get(pk=incident.pk).status == "draft"


def test_reopen_needs_a_reason():
    author = make_user()
    incident = make_incident(status="published", authors=[author])
    with pytest.raises(TransitionError, match="why"):
        reopen(incident=incident, by=author, reason="  ")
    reopen(incident=incident, by=author, reason="New evidence about the cache")
    assert Incident.objects.get(pk=incident.pk).status == "in_review"


def test_stale_status_is_refused():
    """Two reviewers clicking at once: the second sees a clear error, not a double move."""
    reviewer = make_user()
    incident = make_incident(status="in_review", reviewers=[reviewer])
    stale = Incident.objects.get(pk=incident.pk)
    publish(incident=incident, by=reviewer)
    with pytest.raises(TransitionError):
        request_changes(incident=stale, by=reviewer)
