"""Undo for every delete: soft_delete moves rows to the trash whole, restore puts them back."""

import datetime as dt

import pytest
from django.utils import timezone

from incidents import undo
from incidents.models import ActionItem, ContributingFactor, Incident, TimelineEntry
from incidents.review import add_comment
from incidents.review_models import ReviewComment, TrashEntry
from tests import factories
from tests.factories import make_action_item, make_entry, make_factor, make_incident, make_team

pytestmark = pytest.mark.django_db


def make_user(**overrides):
    """A user without a password: these tests sign in with force_login, and skipping the
    password hash makes them several times faster."""
    return factories.make_user(**({"password": None} | overrides))


def test_deleted_timeline_entry_comes_back_exactly():
    """A timeline entry and its evidence links return with the same id and text."""
    author = make_user()
    incident = make_incident(authors=[author])
    entry = make_entry(incident, text="Paged the **on-call**", kind="escalation")
    factor = make_factor(incident, evidence=[entry])
    entry_pk = entry.pk
    trashed = undo.soft_delete(entry, by=author, label="Timeline entry 09:12")

    assert not TimelineEntry.objects.filter(pk=entry_pk).exists()
    assert list(factor.evidence.all()) == []
    assert trashed.incident_pk == incident.pk
    assert trashed.label == "Timeline entry 09:12"

    restored = undo.restore(trashed.token, by=author)
    assert restored.pk == entry_pk
    again = TimelineEntry.objects.get(pk=entry_pk)
    assert (again.text, again.kind, again.at) == (entry.text, entry.kind, entry.at)
    assert again.text_html == entry.text_html
    assert list(factor.evidence.all()) == [again]
    trashed.refresh_from_db()
    assert trashed.restored_by == author and trashed.restored_at is not None


def test_deleting_an_incident_takes_everything_and_restore_brings_it_all_back():
    """The whole write-up, with timeline, factors, action items, comments and m2m links."""
    author, reviewer = make_user(), make_user()
    team = make_team()
    incident = make_incident(authors=[author], reviewers=[reviewer], teams=[team])
    entries = [make_entry(incident) for _ in range(3)]
    factor = make_factor(incident, evidence=entries[:2])
    item = make_action_item(incident, team=team)
    item.addresses.add(factor)
    comment = add_comment(
        incident=incident, by=reviewer, body="Where is the graph?", anchor="impact"
    )
    add_comment(incident=incident, by=author, body="Added.", parent=comment)

    pk = incident.pk
    trashed = undo.soft_delete(incident, by=author)
    assert not Incident.objects.filter(pk=pk).exists()
    assert not TimelineEntry.objects.filter(incident_id=pk).exists()
    assert not ReviewComment.objects.filter(incident_id=pk).exists()

    undo.restore(trashed, by=author)
    incident = Incident.objects.get(pk=pk)
    assert incident.timeline_entries.count() == 3
    assert list(incident.authors.all()) == [author]
    assert list(incident.reviewers.all()) == [reviewer]
    assert list(incident.teams.all()) == [team]
    assert set(ContributingFactor.objects.get(pk=factor.pk).evidence.all()) == set(entries[:2])
    assert list(ActionItem.objects.get(pk=item.pk).addresses.all()) == [factor]
    assert ReviewComment.objects.filter(incident=incident).count() == 2


def test_restoring_twice_is_refused_and_changes_nothing():
    author = make_user()
    incident = make_incident(authors=[author])
    trashed = undo.soft_delete(make_entry(incident), by=author)
    undo.restore(trashed, by=author)
    with pytest.raises(undo.UndoError, match="already restored") as caught:
        undo.restore(trashed, by=author)
    assert caught.value.code == "done"
    assert incident.timeline_entries.count() == 1


def test_only_deleter_authors_and_staff_may_restore():
    """Others get the same answer as for a token that does not exist."""
    author, deleter, outsider = make_user(), make_user(), make_user()
    incident = make_incident(authors=[author], reviewers=[deleter])
    trashed = undo.soft_delete(make_entry(incident), by=deleter)
    assert undo.may_restore(author, trashed)
    assert undo.may_restore(deleter, trashed)
    assert undo.may_restore(make_user(is_staff=True), trashed)
    assert not undo.may_restore(outsider, trashed)
    with pytest.raises(undo.UndoError, match="nothing to restore") as caught:
        undo.restore(trashed, by=outsider)
    assert caught.value.code == "forbidden"


def test_trash_older_than_thirty_days_cannot_be_restored_and_is_purged():
    author = make_user()
    incident = make_incident(authors=[author])
    old = undo.soft_delete(make_entry(incident), by=author)
    fresh = undo.soft_delete(make_entry(incident), by=author)
    TrashEntry.objects.filter(pk=old.pk).update(deleted_at=timezone.now() - dt.timedelta(days=31))
    with pytest.raises(undo.UndoError, match="more than 30 days") as caught:
        undo.restore(old.token, by=author)
    assert caught.value.code == "gone"
    assert undo.purge_expired() == 1
    assert list(TrashEntry.objects.all()) == [fresh]


def test_child_of_a_trashed_incident_waits_for_its_incident():
    """A timeline entry deleted before its write-up can't come back into nothing."""
    author = make_user()
    incident = make_incident(authors=[author], title="Queue backlog")
    pk = incident.pk
    entry_trash = undo.soft_delete(make_entry(incident), by=author)
    incident_trash = undo.soft_delete(incident, by=author)
    with pytest.raises(undo.UndoError, match="Queue backlog") as caught:
        undo.restore(entry_trash, by=author)
    assert caught.value.code == "gone"
    assert TrashEntry.objects.get(pk=entry_trash.pk).restored_at is None  # nothing half-done
    undo.restore(incident_trash, by=author)
    undo.restore(entry_trash, by=author)
    assert Incident.objects.get(pk=pk).timeline_entries.count() == 1


def test_restore_that_clashes_explains_itself():
    """A write-up whose slug was reused meanwhile is not restored over the new one."""
    author = make_user()
    incident = make_incident(authors=[author])
    trashed = undo.soft_delete(incident, by=author)
    make_incident(slug=incident.slug)
    with pytest.raises(undo.UndoError, match="in its place") as caught:
        undo.restore(trashed, by=author)
    assert caught.value.code == "conflict"
    assert TrashEntry.objects.get(pk=trashed.pk).restored_at is None


def test_links_to_things_that_are_gone_are_dropped_not_fatal():
    """Evidence pointing at a since-deleted entry is left out; the factor still returns."""
    author = make_user()
    incident = make_incident(authors=[author])
    kept, lost = make_entry(incident), make_entry(incident)
    factor = make_factor(incident, evidence=[kept, lost])
    pk = factor.pk
    factor_trash = undo.soft_delete(factor, by=author)
    undo.soft_delete(lost, by=author)
    undo.restore(factor_trash, by=author)
    assert list(ContributingFactor.objects.get(pk=pk).evidence.all()) == [kept]


def test_deletes_and_restores_are_in_the_edit_history_with_who():
    author = make_user()
    incident = make_incident(authors=[author])
    entry = make_entry(incident)
    pk = entry.pk
    trashed = undo.soft_delete(entry, by=author)
    deleted = TimelineEntry.history.filter(id=pk).order_by("-history_id").first()
    assert deleted.history_type == "-"
    assert deleted.history_user == author
    assert deleted.history_change_reason.startswith("Moved to the trash")
    undo.restore(trashed, by=author)
    restored = TimelineEntry.history.filter(id=pk).order_by("-history_id").first()
    assert restored.history_type == "+"
    assert restored.history_change_reason == "Restored from the trash"


def test_many_to_many_rows_can_be_trashed_on_their_own():
    """Removing a reviewer is a delete like any other: the link row goes to the trash."""
    author, reviewer = make_user(), make_user()
    incident = make_incident(authors=[author], reviewers=[reviewer])
    link = Incident.reviewers.through.objects.get(incident=incident, user=reviewer)
    trashed = undo.soft_delete(link, by=author, label="Reviewer")
    assert list(incident.reviewers.all()) == []
    record = Incident.history.filter(id=incident.pk).order_by("-history_id").first()
    assert list(record.reviewers.all()) == []
    undo.restore(trashed, by=author)
    assert list(incident.reviewers.all()) == [reviewer]


def test_trash_lists_what_each_person_may_restore():
    author, other_author, stranger = make_user(), make_user(), make_user()
    mine = make_incident(authors=[author])
    theirs = make_incident(authors=[other_author])
    a = undo.soft_delete(make_entry(mine), by=author)
    b = undo.soft_delete(make_entry(theirs), by=other_author)
    assert list(undo.restorable_by(author)) == [a]
    assert list(undo.restorable_by(stranger)) == []
    assert set(undo.restorable_by(make_user(is_staff=True))) == {a, b}


def test_soft_delete_of_something_protected_refuses_and_deletes_nothing():
    """A team still owning action items is PROTECTed; the error says what blocks it."""
    team = make_team()
    make_action_item(team=team)
    with pytest.raises(undo.UndoError, match="action items") as caught:
        undo.soft_delete(team, by=make_user(is_staff=True))
    assert caught.value.code == "protected"
    assert not TrashEntry.objects.exists()


def test_deletes_from_a_private_write_up_stay_with_its_people():
    """Staff restore anyone's deletes, but not from a private write-up that does not list
    them: the trash would otherwise show its titles. Its authors and superusers still can."""
    author, staff = make_user(), make_user(is_staff=True)
    superuser = make_user(is_staff=True, is_superuser=True)
    private = make_incident(authors=[author], visibility=Incident.Visibility.PEOPLE)
    public = make_incident(authors=[author])
    hidden = undo.soft_delete(make_entry(private, text="Badge reader log"), by=author)
    shown = undo.soft_delete(make_entry(public), by=author)
    assert hidden.private and not shown.private
    assert set(undo.restorable_by(staff)) == {shown}
    assert not undo.may_restore(staff, hidden) and undo.may_restore(staff, shown)
    assert set(undo.restorable_by(author)) == {hidden, shown}
    assert set(undo.restorable_by(superuser)) == {hidden, shown}
    assert undo.may_restore(superuser, hidden)
