"""The lifecycle moves and the role rules, without HTTP."""

import pytest
from django.contrib.auth.models import Group

from incidents.lifecycle import (
    RULES,
    TransitionError,
    available_moves,
    may,
    publish,
    reopen,
    request_changes,
    roles,
    submit_for_review,
)
from incidents.models import Incident
from incidents.review import add_comment, ensure_roles, resolve_comment
from incidents.review_models import ReviewNotice
from tests import factories
from tests.factories import make_incident

pytestmark = pytest.mark.django_db


def make_user(**overrides):
    """A user without a password: these tests sign in with force_login, and skipping the
    password hash makes them several times faster."""
    return factories.make_user(**({"password": None} | overrides))


def status_of(incident):
    return Incident.objects.get(pk=incident.pk).status


def test_full_path_draft_to_published():
    """The path of the issue: submit, changes requested, resubmit, approve → published."""
    author, reviewer = make_user(), make_user()
    incident = make_incident(status="draft", authors=[author], reviewers=[reviewer])
    submit_for_review(incident=incident, by=author)
    request_changes(incident=incident, by=reviewer, note="Say more about the alert.")
    submit_for_review(incident=incident, by=author)
    publish(incident=incident, by=reviewer)
    incident.refresh_from_db()
    assert incident.status == "published"
    assert incident.published_at is not None


def test_submit_keeps_its_old_signature():
    """The guided write-up calls submit_for_review(incident=…, by=…) and nothing else."""
    author = make_user()
    incident = make_incident(status="draft", authors=[author])
    submit_for_review(incident=incident, by=author)
    assert status_of(incident) == "in_review"


def test_outsider_cannot_submit_and_nothing_changes():
    incident = make_incident(status="draft")
    with pytest.raises(TransitionError, match="authors") as caught:
        submit_for_review(incident=incident, by=make_user())
    assert caught.value.code == "forbidden"
    assert status_of(incident) == "draft"


def test_author_cannot_publish_own_write_up():
    author = make_user()
    incident = make_incident(status="in_review", authors=[author])
    with pytest.raises(TransitionError, match="reviewer"):
        publish(incident=incident, by=author)
    assert status_of(incident) == "in_review"


def test_draft_cannot_be_published_directly():
    reviewer = make_user()
    incident = make_incident(status="draft", reviewers=[reviewer])
    with pytest.raises(TransitionError, match="draft") as caught:
        publish(incident=incident, by=reviewer)
    assert caught.value.code == "state"
    assert status_of(incident) == "draft"


@pytest.mark.parametrize(
    ("status", "move"),
    [
        ("in_review", submit_for_review),
        ("published", submit_for_review),
        ("draft", request_changes),
        ("changes_requested", request_changes),
        ("changes_requested", publish),
        ("published", publish),
    ],
)
def test_moves_from_the_wrong_state_are_refused(status, move):
    """Every move outside its source states gives a clear message and changes nothing."""
    staff = make_user(is_staff=True)
    incident = make_incident(status=status)
    with pytest.raises(TransitionError, match="can't be"):
        move(incident=incident, by=staff, note="n")
    assert status_of(incident) == status


def test_reopen_needs_a_reason():
    author = make_user()
    incident = make_incident(status="published", authors=[author])
    with pytest.raises(TransitionError, match="why") as caught:
        reopen(incident=incident, by=author, reason="  ")
    assert caught.value.code == "invalid"
    assert status_of(incident) == "published"
    reopen(incident=incident, by=author, reason="New evidence about the cache")
    assert status_of(incident) == "in_review"


def test_stale_status_is_refused():
    """Two reviewers clicking at once: the second sees a clear error, not a double move."""
    reviewer = make_user()
    incident = make_incident(status="in_review", reviewers=[reviewer])
    stale = Incident.objects.get(pk=incident.pk)
    publish(incident=incident, by=reviewer)
    with pytest.raises(TransitionError, match="Someone else"):
        request_changes(incident=stale, by=reviewer, note="Too late")
    assert status_of(incident) == "published"


def test_request_changes_needs_a_note_or_an_open_comment():
    """Authors must learn what to change: a bare "changes requested" is refused."""
    reviewer = make_user()
    incident = make_incident(status="in_review", reviewers=[reviewer])
    with pytest.raises(TransitionError, match="Say what should change"):
        request_changes(incident=incident, by=reviewer)
    assert status_of(incident) == "in_review"
    add_comment(incident=incident, by=reviewer, body="The impact needs numbers.", anchor="impact")
    request_changes(incident=incident, by=reviewer)
    assert status_of(incident) == "changes_requested"


def test_approving_with_open_comments_requires_saying_why():
    """A write-up with unresolved comments can't be approved without saying so."""
    author, reviewer = make_user(), make_user()
    incident = make_incident(status="in_review", authors=[author], reviewers=[reviewer])
    comment = add_comment(incident=incident, by=reviewer, body="Nit: typo", anchor="summary")
    with pytest.raises(TransitionError, match="1 review comment is still open") as caught:
        publish(incident=incident, by=reviewer)
    assert caught.value.code == "invalid"
    assert status_of(incident) == "in_review"

    publish(incident=incident, by=reviewer, open_comments_reason="Only a typo; fixing later.")
    assert status_of(incident) == "published"
    record = Incident.history.filter(id=incident.pk).order_by("-history_id").first()
    assert "1 open comment" in record.history_change_reason
    assert record.history_user == reviewer
    assert comment.pk  # the comment stays, open


def test_resolved_comments_do_not_block_approval():
    author, reviewer = make_user(), make_user()
    incident = make_incident(status="in_review", authors=[author], reviewers=[reviewer])
    comment = add_comment(incident=incident, by=reviewer, body="Add the graph.", anchor="impact")
    resolve_comment(comment=comment, by=author)
    publish(incident=incident, by=reviewer)
    assert status_of(incident) == "published"


def test_every_move_is_in_the_edit_history_with_who_and_why():
    author, reviewer = make_user(), make_user()
    incident = make_incident(status="draft", authors=[author], reviewers=[reviewer])
    submit_for_review(incident=incident, by=author)
    request_changes(incident=incident, by=reviewer, note="More on detection")
    records = list(Incident.history.filter(id=incident.pk).order_by("history_id"))
    assert [r.status for r in records[-2:]] == ["in_review", "changes_requested"]
    assert [r.history_user for r in records[-2:]] == [author, reviewer]
    assert records[-1].history_change_reason == "Changes requested"


def test_moves_make_one_notice_per_recipient_and_none_for_the_actor():
    """Reviewers hear of a submission, authors of a decision; nobody e-mails themselves."""
    author, second_author = make_user(), make_user()
    reviewer = make_user()
    incident = make_incident(status="draft", authors=[author, second_author], reviewers=[reviewer])
    submit_for_review(incident=incident, by=author)
    assert list(ReviewNotice.objects.values_list("kind", "recipient")) == [
        ("review_requested", reviewer.pk)
    ]
    request_changes(incident=incident, by=reviewer, note="Numbers please")
    kinds = sorted(
        ReviewNotice.objects.filter(kind="changes_requested").values_list("recipient", flat=True)
    )
    assert kinds == sorted([author.pk, second_author.pk])


def test_staff_may_do_every_move():
    staff = make_user(is_staff=True)
    incident = make_incident(status="draft")
    submit_for_review(incident=incident, by=staff)
    request_changes(incident=incident, by=staff, note="n")
    submit_for_review(incident=incident, by=staff)
    publish(incident=incident, by=staff)
    reopen(incident=incident, by=staff, reason="Amend the timeline")
    assert status_of(incident) == "in_review"


def test_staff_group_member_acts_as_staff():
    """Membership of the "Staff" group (permission manage_any_incident) is the staff role,
    even without Django's is_staff flag."""
    ensure_roles()
    person = make_user()
    person.groups.add(Group.objects.get(name="Staff"))
    incident = make_incident(status="in_review")
    assert "staff" in roles(person, incident)
    publish(incident=incident, by=person)
    assert status_of(incident) == "published"


def test_reviewers_group_gives_no_rights_on_a_write_up_by_itself():
    """Being in the "Reviewers" group makes someone suggestible, not a reviewer of everything."""
    ensure_roles()
    person = make_user()
    person.groups.add(Group.objects.get(name="Reviewers"))
    incident = make_incident(status="in_review")
    with pytest.raises(TransitionError):
        publish(incident=incident, by=person)


ROLE_MATRIX = {
    # action: roles that may, out of outsider/author/reviewer/staff
    "comment": {"author", "reviewer", "staff"},
    "resolve_comment": {"author", "reviewer", "staff"},
    "submit": {"author", "staff"},
    "request_changes": {"reviewer", "staff"},
    "publish": {"reviewer", "staff"},
    "reopen": {"author", "reviewer", "staff"},
    "manage_people": {"author", "staff"},
    "set_visibility": {"author", "staff"},
    "schedule_meeting": {"author", "reviewer", "staff"},
    "delete_incident": {"author", "staff"},
}


@pytest.mark.parametrize("action", sorted(ROLE_MATRIX))
def test_role_matrix(action):
    """The whole role-by-action table, one row per action, pinned against RULES."""
    author, reviewer, staff, outsider = (
        make_user(),
        make_user(),
        make_user(is_staff=True),
        make_user(),
    )
    incident = make_incident(authors=[author], reviewers=[reviewer])
    people = {"author": author, "reviewer": reviewer, "staff": staff, "outsider": outsider}
    allowed = {role for role, person in people.items() if may(person, action, incident)}
    assert allowed == ROLE_MATRIX[action]
    assert set(RULES) == set(ROLE_MATRIX)


def test_inactive_people_may_do_nothing():
    author = make_user(is_active=False)
    incident = make_incident(status="draft", authors=[author])
    assert not may(author, "submit", incident)


def test_available_moves_follow_state_and_role():
    author, reviewer = make_user(), make_user()
    incident = make_incident(status="in_review", authors=[author], reviewers=[reviewer])
    assert available_moves(author, incident) == []
    assert available_moves(reviewer, incident) == ["request_changes", "publish"]
    incident.status = "published"
    assert available_moves(author, incident) == ["reopen"]
