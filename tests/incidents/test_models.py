import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from incidents.models import ActionItem, Incident, Profile
from tests.factories import (
    make_action_item,
    make_entry,
    make_factor,
    make_incident,
    make_team,
    make_user,
)

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 2, 9, 12, tzinfo=dt.UTC)


def test_slug_is_built_from_title_and_start_date():
    """Slugs read like the CONTRACT example: title words, then the day it started."""
    incident = make_incident(title="Checkout outage", started_at=T0)
    assert incident.slug == "checkout-outage-2026-03-02"


def test_slug_stays_unique_for_same_title_and_day():
    first = make_incident(title="Checkout outage", started_at=T0)
    second = make_incident(title="Checkout outage", started_at=T0)
    assert first.slug != second.slug
    assert second.slug == "checkout-outage-2026-03-02-2"


def test_slug_does_not_change_when_title_changes():
    """Links people shared must keep working after a title edit."""
    incident = make_incident(title="Checkout outage", started_at=T0)
    incident.title = "Checkout outage caused by config"
    incident.save()
    incident.refresh_from_db()
    assert incident.slug == "checkout-outage-2026-03-02"


@pytest.mark.parametrize(
    ("field", "minutes"),
    [("detected_at", -5), ("acknowledged_at", -1), ("mitigated_at", -10), ("resolved_at", -1)],
)
def test_milestone_out_of_order_names_the_field(field, minutes):
    """Milestones must be in order; the error is attached to the field that is wrong."""
    incident = Incident(
        title="x", started_at=T0, detected_at=T0 + dt.timedelta(minutes=5),
        acknowledged_at=T0 + dt.timedelta(minutes=8), mitigated_at=T0 + dt.timedelta(minutes=20),
        resolved_at=T0 + dt.timedelta(minutes=30),
    )  # fmt: skip
    previous = {"detected_at": "started_at", "acknowledged_at": "detected_at",
                "mitigated_at": "acknowledged_at", "resolved_at": "mitigated_at"}[field]  # fmt: skip
    setattr(incident, field, getattr(incident, previous) + dt.timedelta(minutes=minutes))
    with pytest.raises(ValidationError) as caught:
        incident.clean()
    assert field in caught.value.message_dict
    assert "must not be before" in caught.value.message_dict[field][0]


def test_milestones_may_be_missing_and_still_ordered():
    incident = Incident(title="x", started_at=T0, resolved_at=T0 + dt.timedelta(hours=1))
    incident.clean()


def test_skipped_milestone_compares_with_the_last_given_one():
    incident = Incident(
        title="x", started_at=T0, detected_at=T0 + dt.timedelta(minutes=30),
        resolved_at=T0 + dt.timedelta(minutes=10),
    )  # fmt: skip
    with pytest.raises(ValidationError) as caught:
        incident.clean()
    assert list(caught.value.message_dict) == ["resolved_at"]


def test_durations_are_measured_from_the_start():
    incident = make_incident(started_at=T0)
    assert incident.time_to_detect == dt.timedelta(minutes=6)
    assert incident.time_to_mitigate == dt.timedelta(minutes=40)
    assert incident.time_to_resolve == dt.timedelta(minutes=47)


def test_duration_is_none_when_a_milestone_is_missing():
    incident = make_incident(started_at=T0, resolved_at=None)
    assert incident.time_to_resolve is None


def test_markdown_is_rendered_into_html_fields_on_save():
    incident = make_incident(summary="**bold** <script>alert(1)</script>")
    assert "<strong>bold</strong>" in incident.summary_html
    assert "<script" not in incident.summary_html


def test_child_markdown_is_rendered_on_save():
    incident = make_incident()
    entry = make_entry(incident, text="Ran `kubectl rollout undo`")
    factor = make_factor(incident, description="[runbook](javascript:alert(1)) was _stale_")
    assert "<code>kubectl rollout undo</code>" in entry.text_html
    assert "javascript" not in factor.description_html
    assert "<em>stale</em>" in factor.description_html


def test_save_if_version_refuses_a_stale_version():
    """Optimistic concurrency: a save based on an old version changes nothing."""
    incident = make_incident(impact="first")
    stale = Incident.objects.get(pk=incident.pk)
    incident.impact = "second"
    assert incident.save_if_version(1, ["impact"])
    stale.impact = "stale edit"
    assert not stale.save_if_version(1, ["impact"])
    incident.refresh_from_db()
    assert incident.impact == "second"
    assert incident.version == 2
    assert "second" in incident.impact_html


def test_action_item_done_records_completion_time():
    item = make_action_item(status=ActionItem.Status.DONE)
    assert item.completed_at is not None


def test_action_item_overdue_only_when_open_and_past_due():
    today = timezone.localdate()
    late = make_action_item(due=today - dt.timedelta(days=3))
    done_late = make_action_item(due=today - dt.timedelta(days=3), status=ActionItem.Status.DONE)
    future = make_action_item(due=today + dt.timedelta(days=3))
    assert late.is_overdue(today) and late.days_overdue(today) == 3
    assert not done_late.is_overdue(today)
    assert not future.is_overdue(today)
    assert list(ActionItem.objects.overdue(today)) == [late]


def test_due_within_window():
    today = timezone.localdate()
    soon = make_action_item(due=today + dt.timedelta(days=2))
    make_action_item(due=today + dt.timedelta(days=10))
    assert list(ActionItem.objects.due_within(3, today)) == [soon]


def test_tracker_url_rejects_javascript_scheme():
    item = make_action_item()
    item.tracker_url = "javascript:alert(1)"
    with pytest.raises(ValidationError):
        item.full_clean()


def test_visible_to_hides_private_incidents_from_outsiders():
    team = make_team()
    insider = make_user(teams=[team])
    outsider = make_user()
    public = make_incident()
    private = make_incident(visibility=Incident.Visibility.TEAMS)
    private.visible_teams.add(team)
    assert set(Incident.objects.visible_to(insider)) == {public, private}
    assert set(Incident.objects.visible_to(outsider)) == {public}


def test_drafts_are_visible_only_to_their_authors_and_reviewers():
    author, reviewer, other = make_user(), make_user(), make_user()
    draft = make_incident(status=Incident.Status.DRAFT, authors=[author], reviewers=[reviewer])
    assert draft.can_view(author) and draft.can_view(reviewer)
    assert not draft.can_view(other)
    assert draft.can_edit(author) and not draft.can_edit(other)


def test_staff_see_every_write_up_except_private_ones_that_do_not_list_them():
    """Staff read and edit drafts visible to everyone; a private (security, HR) write-up only
    when it names them, like anyone else. Superusers see everything."""
    staff, superuser = make_user(is_staff=True), make_user(is_staff=True, is_superuser=True)
    draft = make_incident(status=Incident.Status.DRAFT)
    private = make_incident(status=Incident.Status.DRAFT, visibility=Incident.Visibility.PEOPLE)
    published_private = make_incident(visibility=Incident.Visibility.PEOPLE)
    assert draft.can_view(staff) and draft.can_edit(staff)
    assert not private.can_view(staff) and not private.can_edit(staff)
    assert not published_private.can_view(staff)
    assert set(Incident.objects.visible_to(staff)) == {draft}
    published_private.visible_users.add(staff)
    assert published_private.can_view(staff)
    assert set(Incident.objects.visible_to(staff)) == {draft, published_private}
    assert private.can_view(superuser) and private.can_edit(superuser)
    assert set(Incident.objects.visible_to(superuser)) == {draft, private, published_private}


def test_people_visibility_admits_chosen_people_only():
    chosen, other = make_user(), make_user()
    incident = make_incident(visibility=Incident.Visibility.PEOPLE)
    incident.visible_users.add(chosen)
    assert incident.can_view(chosen)
    assert not incident.can_view(other)


def test_profile_for_user_is_created_once():
    user = make_user()
    assert Profile.for_user(user).pk == Profile.for_user(user).pk
    assert Profile.for_user(user).email_reminders is True


def test_default_guided_questions_are_loaded_by_migration():
    from incidents.models import GuidedQuestion

    prompts = list(GuidedQuestion.objects.values_list("prompt", flat=True))
    assert "What surprised us?" in prompts
    assert len(prompts) >= 7
