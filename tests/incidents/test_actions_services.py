"""Domain rules of action items, without HTTP: who sees and changes what, the dashboard's
filters and counts, closing with evidence, the version check, all-or-nothing bulk updates."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.http import QueryDict
from django.utils import timezone

from incidents import actions
from incidents.actions import Changes, Closing, Filters
from incidents.models import ActionItem, Incident, Team
from tests.factories import make_action_item, make_incident, make_team, make_user

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 3, 10)
LINK = "https://git.example.com/ops/pull/42"


def ids(queryset):
    return set(queryset.values_list("pk", flat=True))


def filters(query: str, viewer) -> Filters:
    result = Filters.from_params(QueryDict(query))
    result.resolve(teams=list(Team.objects.all()), viewer=viewer)
    return result


# --- Visibility ----------------------------------------------------------------------------------


def test_visible_items_match_visible_to_for_every_kind_of_incident():
    """The fast visibility filter must admit exactly the items of `visible_to` incidents:
    public, drafts (own and others'), team-only and people-only write-ups."""
    reader, author, reviewer = make_user(), make_user(), make_user()
    team = make_team()
    team.members.add(reader)
    cases = [
        make_incident(),
        make_incident(status="draft"),
        make_incident(status="draft", authors=[reader]),
        make_incident(status="in_review", reviewers=[reader]),
        make_incident(visibility="teams"),
        make_incident(visibility="people"),
        make_incident(status="changes_requested", authors=[author], reviewers=[reviewer]),
    ]
    cases[4].visible_teams.add(team)
    cases[5].visible_users.add(reader)
    other_team_only = make_incident(visibility="teams")
    other_team_only.visible_teams.add(make_team())
    cases.append(other_team_only)
    for incident in cases:
        make_action_item(incident)
    for user in (reader, author, reviewer, make_user(), make_user(is_staff=True)):
        expected = ids(ActionItem.objects.filter(incident__in=Incident.objects.visible_to(user)))
        assert ids(actions.visible_items(user)) == expected, user


def test_public_incidents_are_visible_to_everyone_signed_in():
    """Guards the shortcut in `visible_items`: if `visible_to` ever hides a published,
    everyone-visible incident, the dashboard's filter must change too."""
    public = make_incident()
    assert Incident.objects.filter(actions.public_incidents_q(), pk=public.pk).exists()
    assert Incident.objects.visible_to(make_user()).filter(pk=public.pk).exists()


def test_changeable_by_owner_team_authors_reviewers_and_staff():
    """Team members, leads, owners, authors, reviewers and staff may change; others not."""
    owner, member, lead, author, reviewer, outsider = (make_user() for _ in range(6))
    team = make_team(lead=lead)
    team.members.add(member)
    incident = make_incident(authors=[author], reviewers=[reviewer])
    item = make_action_item(incident, team=team, owner=owner)
    for person in (owner, member, lead, author, reviewer, make_user(is_staff=True)):
        assert actions.can_change(person, item), person
    assert not actions.can_change(outsider, item)
    assert actions.can_verify(reviewer, item)
    assert not actions.can_verify(author, item)


def test_page_permissions_follow_the_same_rules_as_the_annotations():
    """`attach_permissions` (the dashboard's rows) answers exactly as `with_permissions`
    (the SQL rules) for every way a person can be tied to an item, and for none."""
    owner, member, lead, author, reviewer, outsider = (make_user() for _ in range(6))
    staff = make_user(is_staff=True)
    team, other_team = make_team(lead=lead), make_team()
    team.members.add(member)
    incident = make_incident(authors=[author], reviewers=[reviewer])
    other_incident = make_incident(authors=[outsider])
    items = [
        make_action_item(incident, team=team, owner=owner),
        make_action_item(incident, team=other_team),
        make_action_item(other_incident, team=team),
        make_action_item(other_incident, team=other_team, owner=member),
        make_action_item(other_incident, team=other_team),
    ]
    ids = [item.pk for item in items]
    seen = set()
    for person in (owner, member, lead, author, reviewer, outsider, staff):
        expected = {  # SQL may answer NULL for "no": compare truth values
            row.pk: (bool(row.can_change), bool(row.can_verify))
            for row in actions.with_permissions(ActionItem.objects.filter(pk__in=ids), person)
        }
        rows = list(ActionItem.objects.filter(pk__in=ids))
        actions.attach_permissions(rows, person)
        assert {row.pk: (row.can_change, row.can_verify) for row in rows} == expected, person
        seen |= set(expected.values())
    assert seen == {(True, True), (True, False), (False, False)}  # every answer was tested
    actions.attach_permissions([], outsider)  # an empty page needs no query


# --- Filters -------------------------------------------------------------------------------------


def test_default_shows_open_and_in_progress_and_each_filter_narrows(user):
    """No status parameter means open or in progress; each filter narrows the list."""
    payments = make_team(slug="payments")
    owner = make_user(username="olivia")
    open_item = make_action_item(team=payments, owner=owner, due=TODAY - dt.timedelta(days=2))
    started = make_action_item(status="in_progress", priority="low", kind="learn", due=None)
    done = make_action_item(status="done", evidence="x")
    sev1 = make_action_item(make_incident(severity="SEV1"), due=TODAY + dt.timedelta(days=3))

    def shown(query):
        return ids(actions.filtered_items(user, filters(query, user), TODAY))

    assert shown("") == {open_item.pk, started.pk, sev1.pk}
    assert shown("status=all") == {open_item.pk, started.pk, done.pk, sev1.pk}
    assert shown("status=done") == {done.pk}
    assert shown("team=payments") == {open_item.pk}
    assert shown("owner=olivia") == {open_item.pk}
    assert shown("priority=low") == {started.pk}
    assert shown("kind=learn") == {started.pk}
    assert shown("due=overdue") == shown("overdue=1") == {open_item.pk}
    assert shown("due=week") == {sev1.pk}
    assert shown("due=none") == {started.pk}
    assert shown("severity=SEV1") == {sev1.pk}
    assert shown(f"incident={sev1.incident.slug}") == {sev1.pk}


def test_escalated_and_verified_filters(user, settings):
    settings.DEBRIEF_ESCALATION_DAYS = 14
    late = make_action_item(due=TODAY - dt.timedelta(days=15))
    make_action_item(due=TODAY - dt.timedelta(days=14))
    verified = make_action_item(
        status="done", evidence="x", verified_effective_at=timezone.now(), due=None
    )
    unverified = make_action_item(status="done", evidence="x", due=None)

    def shown(query):
        return ids(actions.filtered_items(user, filters(query, user), TODAY))

    assert shown("due=escalated") == {late.pk}
    assert shown("status=all&verified=yes") == {verified.pk}
    assert shown("status=all&verified=no") == {unverified.pk}


def test_unknown_values_are_dropped_with_a_note(user):
    """Bad input never breaks the page: each unknown value is named in a note and ignored."""
    private = make_incident(status="draft")
    result = filters(
        f"status=bogus&due=someday&sort=colour&team=nope&owner=ghost&incident={private.slug}",
        user,
    )
    assert (result.status, result.due, result.sort, result.team, result.owner) == (
        "", "", "due", "", "",
    )  # fmt: skip
    assert result.incident_obj is None
    text = " ".join(result.notes)
    for word in ("bogus", "someday", "colour", "nope", "ghost", private.slug):
        assert word in text
    # The private draft is described exactly like a missing slug: nothing leaks.
    assert "that you can read" in text


def test_sort_orders(user):
    a = make_action_item(due=TODAY + dt.timedelta(days=5), priority="low")
    b = make_action_item(due=TODAY + dt.timedelta(days=1), priority="medium")
    c = make_action_item(due=None, priority="high")

    def order(query):
        return list(
            actions.filtered_items(user, filters(query, user), TODAY).values_list("pk", flat=True)
        )

    assert order("sort=due") == [b.pk, a.pk, c.pk]  # no due date last
    assert order("sort=-due") == [a.pk, b.pk, c.pk]
    assert order("sort=priority") == [c.pk, b.pk, a.pk]
    assert order("sort=age") == [a.pk, b.pk, c.pk]
    assert order("sort=-age") == [c.pk, b.pk, a.pk]


def test_facet_counts_apply_the_other_filters(user):
    """Each value's count is what choosing it would show, given the other filters."""
    payments = make_team(slug="payments")
    make_action_item(team=payments, priority="high")
    make_action_item(team=payments, priority="low")
    make_action_item(team=payments, priority="low", status="done", evidence="x")
    make_action_item(priority="high")
    counts = actions.facet_counts(user, filters("team=payments", user), TODAY)
    assert counts["priority"] == {"": 2, "low": 1, "medium": 0, "high": 1}
    assert counts["status"][""] == 2 and counts["status"]["done"] == 1
    assert counts["status"]["all"] == 3
    assert counts["team"][payments.pk] == 2  # the team facet ignores the team filter
    assert sum(counts["team"].values()) == 3


# --- Closing and editing -------------------------------------------------------------------------


def test_done_needs_a_link_and_verification_for_prevent_and_detect(user):
    item = make_action_item(kind="detect", owner=user)
    with pytest.raises(ValidationError) as error:
        actions.edit_item(item=item, by=user, expected_version=1, changes=Changes(status="done"))
    assert set(error.value.message_dict) == {"change_url", "verification"}
    assert ActionItem.objects.get(pk=item.pk).status == "open"

    item = ActionItem.objects.get(pk=item.pk)
    actions.edit_item(
        item=item,
        by=user,
        expected_version=1,
        changes=Changes(status="done"),
        closing=Closing(change_url=LINK, verification="The alert fired in the game day."),
    )
    item.refresh_from_db()
    assert item.status == "done" and item.completed_at is not None and item.version == 2
    assert LINK in item.evidence and f'href="{LINK}"' in item.evidence_html
    assert "game day" in item.evidence_html


def test_process_item_needs_only_the_link_and_a_bad_link_is_refused(user):
    item = make_action_item(kind="process", owner=user)
    with pytest.raises(ValidationError) as error:
        actions.edit_item(
            item=item, by=user, expected_version=1, changes=Changes(status="done"),
            closing=Closing(change_url="javascript:alert(1)"),
        )  # fmt: skip
    assert "change_url" in error.value.message_dict
    item = ActionItem.objects.get(pk=item.pk)
    actions.edit_item(
        item=item, by=user, expected_version=1, changes=Changes(status="done"),
        closing=Closing(change_url=LINK),
    )  # fmt: skip
    assert ActionItem.objects.get(pk=item.pk).status == "done"


def test_wont_do_needs_a_reason(user):
    item = make_action_item(owner=user)
    with pytest.raises(ValidationError) as error:
        actions.edit_item(item=item, by=user, expected_version=1, changes=Changes(status="wont_do"))
    assert "reason" in error.value.message_dict
    item = ActionItem.objects.get(pk=item.pk)
    actions.edit_item(
        item=item, by=user, expected_version=1, changes=Changes(status="wont_do"),
        closing=Closing(reason="Superseded by the new load balancer."),
    )  # fmt: skip
    item.refresh_from_db()
    assert item.status == "wont_do" and item.wont_do_reason.startswith("Superseded")


def test_stale_version_is_a_conflict_and_changes_nothing(user):
    """Two managers editing the same row: the second save is refused, not silently applied."""
    item = make_action_item(owner=user)
    first = ActionItem.objects.get(pk=item.pk)
    second = ActionItem.objects.get(pk=item.pk)
    actions.edit_item(item=first, by=user, expected_version=1, changes=Changes(priority="low"))
    with pytest.raises(actions.VersionConflict, match="Someone else changed"):
        actions.edit_item(
            item=second, by=user, expected_version=1, changes=Changes(priority="high")
        )
    assert ActionItem.objects.get(pk=item.pk).priority == "low"


def test_past_due_date_needs_confirmation(user):
    item = make_action_item(owner=user)
    past = TODAY - dt.timedelta(days=1)
    with pytest.raises(ValidationError) as error:
        actions.edit_item(
            item=item, by=user, expected_version=1, changes=Changes(due=past), today=TODAY
        )
    assert "in the past" in error.value.message_dict["due"][0]
    item = ActionItem.objects.get(pk=item.pk)
    actions.edit_item(
        item=item, by=user, expected_version=1, changes=Changes(due=past), today=TODAY,
        allow_past_due=True,
    )  # fmt: skip
    assert ActionItem.objects.get(pk=item.pk).due == past


def test_outsider_cannot_edit(user):
    item = make_action_item()
    with pytest.raises(actions.ActionError):
        actions.edit_item(item=item, by=user, expected_version=1, changes=Changes(priority="low"))


def test_reopening_clears_completion_and_verification(staff):
    item = make_action_item(
        status="done", evidence="x", verified_effective_at=timezone.now(), verified_by=staff
    )
    actions.edit_item(item=item, by=staff, expected_version=1, changes=Changes(status="open"))
    item.refresh_from_db()
    assert item.completed_at is None and item.verified_effective_at is None
    assert item.verified_by is None


# --- Bulk ----------------------------------------------------------------------------------------


def test_bulk_update_sets_values_on_every_item(staff):
    owner = make_user(username="bea")
    items = [make_action_item() for _ in range(3)]
    count = actions.bulk_update(
        by=staff,
        item_ids=[item.pk for item in items],
        changes=Changes(owner=owner, priority="low", status="in_progress"),
    )
    assert count == 3
    for item in ActionItem.objects.filter(pk__in=[i.pk for i in items]):
        assert (item.owner_id, item.priority, item.status, item.version) == (
            owner.pk, "low", "in_progress", 2,
        )  # fmt: skip


def test_bulk_close_is_all_or_nothing_and_says_which_item(staff):
    """One detect item without verification stops the whole bulk close."""
    process = make_action_item(kind="process", title="Write the runbook")
    detect = make_action_item(kind="detect", title="Alert on queue depth")
    with pytest.raises(ValidationError) as error:
        actions.bulk_update(
            by=staff,
            item_ids=[process.pk, detect.pk],
            changes=Changes(status="done"),
            closing=Closing(change_url=LINK),
        )
    assert "Alert on queue depth" in " ".join(error.value.message_dict["verification"])
    assert set(ActionItem.objects.values_list("status", flat=True)) == {"open"}


def test_bulk_refuses_items_the_person_may_not_change(user):
    mine = make_action_item(owner=user)
    theirs = make_action_item(title="Someone else's item")
    with pytest.raises(ValidationError) as error:
        actions.bulk_update(by=user, item_ids=[mine.pk, theirs.pk], changes=Changes(priority="low"))
    assert "Someone else's item" in " ".join(error.value.message_dict["items"])
    assert ActionItem.objects.get(pk=mine.pk).priority == "high"


def test_bulk_reports_missing_items_and_stale_versions(staff):
    item = make_action_item()
    with pytest.raises(ValidationError, match="no longer exist"):
        actions.bulk_update(by=staff, item_ids=[item.pk, 999_999], changes=Changes(priority="low"))
    with pytest.raises(actions.VersionConflict):
        actions.bulk_update(
            by=staff, item_ids=[item.pk], versions={item.pk: 7}, changes=Changes(priority="low")
        )
    assert ActionItem.objects.get(pk=item.pk).priority == "high"


def test_bulk_with_nothing_to_change_or_nothing_selected(staff):
    item = make_action_item()
    with pytest.raises(ValidationError, match="Choose what to change"):
        actions.bulk_update(by=staff, item_ids=[item.pk], changes=Changes())
    with pytest.raises(ValidationError, match="Select at least one"):
        actions.bulk_update(by=staff, item_ids=[], changes=Changes(priority="low"))


# --- Verification --------------------------------------------------------------------------------


def test_reviewer_marks_done_item_verified_effective():
    reviewer = make_user()
    item = make_action_item(make_incident(reviewers=[reviewer]), status="done", evidence="x")
    actions.mark_verified(item=item, by=reviewer)
    item.refresh_from_db()
    assert item.verified_effective_at is not None and item.verified_by == reviewer
    actions.mark_verified(item=item, by=reviewer, verified=False)
    item.refresh_from_db()
    assert item.verified_effective_at is None


def test_only_reviewers_verify_and_only_done_items(user):
    reviewer = make_user()
    incident = make_incident(reviewers=[reviewer], authors=[user])
    with pytest.raises(actions.ActionError, match="reviewer"):
        actions.mark_verified(item=make_action_item(incident, status="done", evidence="x"), by=user)
    with pytest.raises(actions.ActionError, match="done"):
        actions.mark_verified(item=make_action_item(incident), by=reviewer)


@pytest.mark.parametrize("number", [1, 2, 3, "3", 4, 99, 0, -1, "last", "", None, "2.5"])
def test_a_page_of_ids_is_what_the_paginator_gives(number):
    """On PostgreSQL the page and the total come from one windowed query; whatever the page
    asked for, the result must be Django's own."""
    from django.core.paginator import Paginator

    incident = make_incident()
    for n in range(7):
        make_action_item(incident, due=timezone.localdate() + dt.timedelta(days=n % 3))
    items = ActionItem.objects.order_by("due", "id")
    expected = Paginator(items.values_list("pk", flat=True), 3).get_page(number)
    page = actions.page_of_ids(items, number, 3)
    assert page.number == expected.number
    assert list(page.object_list) == list(expected.object_list)
    assert page.paginator.count == 7 and page.paginator.num_pages == 3
    assert page.has_next() == expected.has_next()


def test_a_page_of_no_ids():
    page = actions.page_of_ids(ActionItem.objects.order_by("id"), 1, 3)
    assert list(page.object_list) == [] and page.paginator.count == 0 and page.number == 1


@pytest.mark.parametrize("number", [None, 1, 2])
def test_postgresql_reads_a_page_and_its_total_in_one_query(number, django_assert_num_queries):
    from django.db import connection

    incident = make_incident()
    for _ in range(5):
        make_action_item(incident)
    items = ActionItem.objects.order_by("id")
    with django_assert_num_queries(1 if connection.vendor == "postgresql" else 2):
        page = actions.page_of_ids(items, number, 3)
        assert page.paginator.count == 5 and len(list(page.object_list)) in (2, 3)
