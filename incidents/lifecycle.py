"""Who may move a write-up between states, and the moves themselves.

draft → in review → changes requested → in review → published; published → in review (reopen
for an amendment, with a reason). Each move is a guarded function: a move that is not allowed
raises `TransitionError` with a message for people and changes nothing.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from .models import Incident

Status = Incident.Status


class TransitionError(Exception):
    """A move that is not allowed from this state, or not by this person."""


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


@transaction.atomic
def submit_for_review(*, incident: Incident, by) -> None:
    if not (incident.is_author(by) or by.is_staff):
        raise TransitionError("Only the write-up's authors can submit it for review.")
    _move(incident, "submit")


@transaction.atomic
def request_changes(*, incident: Incident, by) -> None:
    if not (incident.is_reviewer(by) or by.is_staff):
        raise TransitionError("Only a reviewer of this write-up can request changes.")
    _move(incident, "request_changes")


@transaction.atomic
def publish(*, incident: Incident, by) -> None:
    if not (incident.is_reviewer(by) or by.is_staff):
        raise TransitionError("Only a reviewer of this write-up can approve and publish it.")
    _move(incident, "publish")


@transaction.atomic
def reopen(*, incident: Incident, by, reason: str) -> None:
    if not (incident.is_author(by) or incident.is_reviewer(by) or by.is_staff):
        raise TransitionError("Only authors and reviewers can reopen a published write-up.")
    if not reason.strip():
        raise TransitionError("Say why the write-up is reopened, so readers know what changes.")
    _move(incident, "reopen")
