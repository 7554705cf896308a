"""Who may do what to a write-up, and the moves between its states.

draft → in review → changes requested → in review → published; published → in review (reopen
for an amendment, with a reason). Each move is a guarded function: a move that is not allowed
raises `TransitionError` with a message for people and changes nothing. A move is recorded in
the edit history (who, when, why) and announces itself by e-mail after the commit.

Roles
-----
- **author** — listed in `incident.authors` (several per write-up);
- **reviewer** — listed in `incident.reviewers` (one or more requested per write-up);
- **staff** — Django staff, superusers, and members of the "Staff" group (permission
  `incidents.manage_any_incident`): may act as author and reviewer on every write-up.

`may(user, action, incident)` answers from the `RULES` table below; views and services ask it,
so the role-by-action matrix lives in one place. Reading is `incident.can_view(user)`.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from .models import Incident

Status = Incident.Status


class TransitionError(Exception):
    """A move that is not allowed from this state, or not by this person.

    `code` says why, so a view can answer with the right status: "forbidden" (403), "state"
    (409: the write-up is not in a state that allows it, or someone moved it meanwhile),
    "invalid" (200 with the message: something to fix in the form).
    """

    def __init__(self, message: str, *, code: str = "state"):
        super().__init__(message)
        self.message = message
        self.code = code


# Which roles may do each action. Reading is not here: see Incident.can_view.
RULES: dict[str, frozenset[str]] = {
    "comment": frozenset({"author", "reviewer", "staff"}),
    "resolve_comment": frozenset({"author", "reviewer", "staff"}),
    "submit": frozenset({"author", "staff"}),
    "request_changes": frozenset({"reviewer", "staff"}),
    "publish": frozenset({"reviewer", "staff"}),
    "reopen": frozenset({"author", "reviewer", "staff"}),
    "manage_people": frozenset({"author", "staff"}),
    "set_visibility": frozenset({"author", "staff"}),
    "schedule_meeting": frozenset({"author", "reviewer", "staff"}),
    "delete_incident": frozenset({"author", "staff"}),
}

REFUSALS = {
    "comment": "Only the write-up's authors and reviewers can comment on its review.",
    "resolve_comment": "Only the write-up's authors and reviewers can resolve comments.",
    "submit": "Only the write-up's authors can submit it for review.",
    "request_changes": "Only a reviewer of this write-up can request changes.",
    "publish": "Only a reviewer of this write-up can approve and publish it.",
    "reopen": "Only authors and reviewers can reopen a published write-up.",
    "manage_people": "Only the write-up's authors can change its authors and reviewers.",
    "set_visibility": "Only the write-up's authors can change who may read it.",
    "schedule_meeting": "Only the write-up's authors and reviewers can plan its review meeting.",
    "delete_incident": "Only the write-up's authors can delete it.",
}


def is_staff_member(user) -> bool:
    """Django staff, superusers and the "Staff" group. The group check costs a query the first
    time (Django caches permissions on the user object), so it comes last."""
    if not (user and user.is_authenticated and user.is_active):
        return False
    return user.is_staff or user.is_superuser or user.has_perm("incidents.manage_any_incident")


def roles(user, incident: Incident) -> frozenset[str]:
    if not (user and user.is_authenticated):
        return frozenset()
    found = set()
    if incident.is_author(user):
        found.add("author")
    if incident.is_reviewer(user):
        found.add("reviewer")
    if is_staff_member(user):
        found.add("staff")
    return frozenset(found)


def may(user, action: str, incident: Incident) -> bool:
    allowed = RULES[action]
    if not (user and user.is_authenticated and user.is_active):
        return False
    if "author" in allowed and incident.is_author(user):
        return True
    if "reviewer" in allowed and incident.is_reviewer(user):
        return True
    return "staff" in allowed and is_staff_member(user)


def require(user, action: str, incident: Incident) -> None:
    if not may(user, action, incident):
        raise TransitionError(REFUSALS[action], code="forbidden")


ALLOWED = {
    "submit": ({Status.DRAFT, Status.CHANGES_REQUESTED}, Status.IN_REVIEW),
    "request_changes": ({Status.IN_REVIEW}, Status.CHANGES_REQUESTED),
    "publish": ({Status.IN_REVIEW}, Status.PUBLISHED),
    "reopen": ({Status.PUBLISHED}, Status.IN_REVIEW),
}

PAST = {
    "submit": "submitted for review",
    "request_changes": "sent back for changes",
    "publish": "published",
    "reopen": "reopened",
}


def available_moves(user, incident: Incident) -> list[str]:
    """The moves this person could make now (for showing buttons; the moves check again)."""
    return [
        move
        for move, (sources, _) in ALLOWED.items()
        if incident.status in sources and may(user, move, incident)
    ]


def _move(incident: Incident, move: str) -> None:
    sources, target = ALLOWED[move]
    if incident.status not in sources:
        raise TransitionError(
            f"A write-up that is {incident.get_status_display().lower()} can't be {PAST[move]}."
        )
    # Conditional on the state we checked, so two clicks cannot both move it.
    updated = Incident.objects.filter(pk=incident.pk, status=incident.status).update(
        status=target,
        published_at=timezone.now() if target == Status.PUBLISHED else incident.published_at,
        updated_at=timezone.now(),
    )
    if not updated:
        raise TransitionError("Someone else changed this write-up's status; reload and try again.")
    incident.status = target
    if target == Status.PUBLISHED:
        incident.refresh_from_db(fields=["published_at"])


def _after_move(incident: Incident, move: str, *, by, reason: str, note: str = "") -> None:
    from . import review

    record = review.record_history(incident, by=by, reason=reason)
    review.announce_move(incident=incident, move=move, by=by, note=note, event=record)


def _clean(text: str | None) -> str:
    return (text or "").strip()


@transaction.atomic
def submit_for_review(*, incident: Incident, by, note: str = "") -> None:
    """Author → reviewers. Reviewers are asked by e-mail."""
    require(by, "submit", incident)
    _move(incident, "submit")
    _after_move(incident, "submit", by=by, reason="Submitted for review", note=_clean(note))


@transaction.atomic
def request_changes(*, incident: Incident, by, note: str = "") -> None:
    """Reviewer → authors. Needs a note or at least one open review comment, so the authors
    know what to change."""
    from .review_models import ReviewComment

    require(by, "request_changes", incident)
    note = _clean(note)
    if (
        incident.status in ALLOWED["request_changes"][0]
        and not note
        and not ReviewComment.objects.filter(incident=incident).unresolved().exists()
    ):
        raise TransitionError(
            "Say what should change: add a note, or leave review comments first.", code="invalid"
        )
    _move(incident, "request_changes")
    _after_move(incident, "request_changes", by=by, reason="Changes requested", note=note)


@transaction.atomic
def publish(*, incident: Incident, by, open_comments_reason: str = "", note: str = "") -> None:
    """Reviewer approves; the write-up is published for everyone it is visible to.

    With unresolved review comments, the reviewer must say why it can be approved anyway
    (`open_comments_reason`); the reason is kept in the edit history.
    """
    from .review_models import ReviewComment

    require(by, "publish", incident)
    open_count = ReviewComment.objects.filter(incident=incident).unresolved().count()
    reason = _clean(open_comments_reason)
    if incident.status in ALLOWED["publish"][0] and open_count and not reason:
        raise TransitionError(
            f"{open_count} review comment{'s are' if open_count != 1 else ' is'} still open. "
            "Resolve them, or say why the write-up can be approved anyway.",
            code="invalid",
        )
    _move(incident, "publish")
    history_reason = "Approved and published"
    if open_count:
        history_reason += (
            f" with {open_count} open comment{'s' if open_count != 1 else ''}: {reason}"
        )
    _after_move(incident, "publish", by=by, reason=history_reason, note=_clean(note) or reason)


# "Approve" is what reviewers call it; approving publishes.
approve = publish


@transaction.atomic
def reopen(*, incident: Incident, by, reason: str) -> None:
    """A published write-up goes back to review for an amendment; the reason is recorded."""
    require(by, "reopen", incident)
    if not _clean(reason):
        raise TransitionError(
            "Say why the write-up is reopened, so readers know what changes.", code="invalid"
        )
    _move(incident, "reopen")
    _after_move(
        incident, "reopen", by=by, reason=f"Reopened: {_clean(reason)}", note=_clean(reason)
    )
