"""Timeline entries, contributing factors and action items, edited inline: add, edit, delete,
reorder, paste, with htmx partials and plain posts alike."""

import datetime as dt

import pytest

from incidents.models import ActionItem, ContributingFactor, Incident, TimelineEntry
from tests.factories import make_action_item, make_entry, make_factor, make_incident, make_team

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}


@pytest.fixture
def draft(user):
    return make_incident(
        title="Checkout errors",
        status=Incident.Status.DRAFT,
        authors=[user],
        started_at=dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC),
    )


def url(incident, *parts):
    return f"/incidents/{incident.slug}/edit/" + "/".join(str(p) for p in parts) + "/"


# Timeline -----------------------------------------------------------------------------------


def test_add_entry_plain_post_redirects_to_the_entry(client_logged_in, draft):
    response = client_logged_in.post(
        url(draft, "timeline", "add"),
        {"new-at": "2026-03-02T09:12", "new-kind": "detection", "new-text": "Alert fired"},
    )
    entry = TimelineEntry.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"{url(draft, 'timeline')}#timeline-{entry.pk}"
    assert (entry.kind, entry.text, entry.incident) == ("detection", "Alert fired", draft)
    assert entry.at == dt.datetime(2026, 3, 2, 9, 12, tzinfo=dt.UTC)


def test_add_entry_with_htmx_returns_the_list_and_progress(client_logged_in, draft):
    """The editor partial with the new row, the progress bar out of band, focus back to add."""
    response = client_logged_in.post(
        url(draft, "timeline", "add"),
        {"new-at": "2026-03-02T09:12", "new-kind": "status_update", "new-text": "Investigating"},
        headers=HX,
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="timeline-editor"')
    assert "Investigating" in body and "Status update" in body
    assert 'hx-swap-oob="true"' in body
    assert response["X-Debrief-Saved"] == "1"
    assert response["X-Debrief-Focus"].startswith("#add-entry-form")


def test_add_entry_invalid_keeps_the_text(client_logged_in, draft):
    """No time: field error in the editor partial, text kept, nothing stored."""
    response = client_logged_in.post(
        url(draft, "timeline", "add"),
        {"new-at": "", "new-kind": "action", "new-text": "Kept text"},
        headers=HX,
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "When did this happen?" in body and "Kept text" in body
    assert not TimelineEntry.objects.exists()


def test_add_entry_invalid_plain_post_renders_the_page(client_logged_in, draft):
    response = client_logged_in.post(
        url(draft, "timeline", "add"), {"new-at": "x", "new-kind": "nope", "new-text": ""}
    )
    assert response.status_code == 200
    assert b"<html" in response.content and b"Say what happened." in response.content


def test_edit_entry_inline(client_logged_in, draft):
    """GET swaps the row for its form; POST saves and returns the list."""
    entry = make_entry(draft, text="Alert fired")
    form = client_logged_in.get(url(draft, "timeline", entry.pk), headers=HX)
    body = form.content.decode()
    assert body.lstrip().startswith(f'<li id="timeline-{entry.pk}" class="row is-editing"')
    base = body.split('name="row_base" value="')[1].split('"')[0]
    response = client_logged_in.post(
        url(draft, "timeline", entry.pk),
        {f"row{entry.pk}-at": "2026-03-02T09:20", f"row{entry.pk}-kind": "alert",
         f"row{entry.pk}-text": "Alert fired for checkout", "row_base": base},
        headers=HX,
    )  # fmt: skip
    assert response.status_code == 200
    entry.refresh_from_db()
    assert (entry.kind, entry.text) == ("alert", "Alert fired for checkout")
    assert entry.text_html == "<p>Alert fired for checkout</p>"


def test_edit_entry_without_js_uses_the_step_page(client_logged_in, draft):
    """The Edit link works as a plain link: the step page with that row as a form."""
    entry = make_entry(draft, text="Alert fired")
    response = client_logged_in.get(url(draft, "timeline", entry.pk))
    assert response["Location"] == f"{url(draft, 'timeline')}?edit={entry.pk}#timeline-{entry.pk}"
    page = client_logged_in.get(f"{url(draft, 'timeline')}?edit={entry.pk}")
    assert f'id="row-form-{entry.pk}"'.encode() in page.content


@pytest.mark.parametrize(
    ("kind", "save_label"),
    [("timeline", "Save entry"), ("factors", "Save factor"), ("actions", "Save action item")],
)
def test_a_row_being_edited_offers_save_and_a_cancel_that_works_without_js(
    client_logged_in, draft, kind, save_label
):
    row = {
        "timeline": lambda: make_entry(draft),
        "factors": lambda: make_factor(draft),
        "actions": lambda: make_action_item(draft),
    }[kind]()
    body = client_logged_in.get(url(draft, kind, row.pk), headers=HX).content.decode()
    assert f">{save_label}</button>" in body
    assert f'href="{url(draft, kind)}#{kind}-{row.pk}"' in body
    assert f'hx-get="{url(draft, kind, row.pk)}?cancel=1" hx-target="#{kind}-{row.pk}"' in body


def test_cancel_edit_returns_the_row(client_logged_in, draft):
    entry = make_entry(draft, text="Alert fired")
    response = client_logged_in.get(f"{url(draft, 'timeline', entry.pk)}?cancel=1", headers=HX)
    assert response.content.decode().lstrip().startswith(f'<li id="timeline-{entry.pk}" class="row')
    assert b"is-editing" not in response.content


def test_edit_entry_changed_by_someone_else_is_a_409(client_logged_in, draft):
    """The row changed since the form was opened: 409, theirs shown, mine kept."""
    entry = make_entry(draft, text="Original")
    body = client_logged_in.get(url(draft, "timeline", entry.pk), headers=HX).content.decode()
    base = body.split('name="row_base" value="')[1].split('"')[0]
    TimelineEntry.objects.filter(pk=entry.pk).update(text="Their version")
    data = {f"row{entry.pk}-at": "2026-03-02T09:20", f"row{entry.pk}-kind": "action",
            f"row{entry.pk}-text": "My version", "row_base": base}  # fmt: skip
    response = client_logged_in.post(url(draft, "timeline", entry.pk), data, headers=HX)
    text = response.content.decode()
    assert response.status_code == 409
    assert "My version" in text and "Their version" in text
    entry.refresh_from_db()
    assert entry.text == "Their version"
    # Saving again with the fingerprint shown in the conflict replaces theirs, on purpose.
    overwrite = text.split('name="overwrite_base" value="')[1].split('"')[0]
    response = client_logged_in.post(
        url(draft, "timeline", entry.pk), {**data, "overwrite_base": overwrite}, headers=HX
    )
    assert response.status_code == 200
    entry.refresh_from_db()
    assert entry.text == "My version"


def test_delete_entry(client_logged_in, draft):
    entry = make_entry(draft)
    response = client_logged_in.post(url(draft, "timeline", entry.pk, "delete"), headers=HX)
    assert response.status_code == 200
    assert not TimelineEntry.objects.exists()
    assert b"/undo/" in response.content  # the deleted row can be brought back
    response = client_logged_in.post(url(draft, "timeline", entry.pk, "delete"))
    assert response.status_code == 302  # already gone: nothing to do, no error


def test_deleted_entry_can_be_undone(client_logged_in, draft, user):
    """A wrong click on Delete loses nothing: the row goes to the trash and Undo restores it."""
    from incidents.review_models import TrashEntry
    from incidents.undo import restore

    entry = make_entry(draft, text="Paged the database team")
    client_logged_in.post(url(draft, "timeline", entry.pk, "delete"))
    assert not TimelineEntry.objects.filter(pk=entry.pk).exists()
    trashed = TrashEntry.objects.get()
    restore(trashed, by=user)
    assert TimelineEntry.objects.get(pk=entry.pk).text == "Paged the database team"


def test_move_entries_at_the_same_minute(client_logged_in, draft):
    """Entries at the same minute can be put in order; times order the rest."""
    at = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
    first = make_entry(draft, at=at, text="first", position=1)
    second = make_entry(draft, at=at, text="second", position=2)
    later = make_entry(draft, at=at + dt.timedelta(minutes=5), text="later", position=3)
    body = client_logged_in.get(url(draft, "timeline")).content.decode()
    assert body.count('data-move="down"') == 1 and body.count('data-move="up"') == 1
    response = client_logged_in.post(
        url(draft, "timeline", second.pk, "move"), {"direction": "up"}, headers=HX
    )
    assert response.status_code == 200
    order = list(draft.timeline_entries.values_list("text", flat=True))
    assert order == ["second", "first", "later"]
    # Moving across a different time does nothing.
    client_logged_in.post(url(draft, "timeline", later.pk, "move"), {"direction": "up"})
    assert list(draft.timeline_entries.values_list("text", flat=True)) == order
    assert first.pk  # unchanged row still there
    bad = client_logged_in.post(url(draft, "timeline", first.pk, "move"), {"direction": "x"})
    assert bad.status_code == 400


def test_rows_of_another_incident_are_404(client_logged_in, draft, user):
    other = make_incident(authors=[user])
    entry = make_entry(other)
    assert client_logged_in.get(url(draft, "timeline", entry.pk), headers=HX).status_code == 404
    assert client_logged_in.post(url(draft, "timeline", entry.pk, "delete")).status_code == 302
    assert TimelineEntry.objects.filter(pk=entry.pk).exists()


def test_unknown_row_kind_is_404(client_logged_in, draft):
    assert client_logged_in.post(url(draft, "widgets", "add")).status_code == 404


def test_outsiders_cannot_change_rows(client_logged_in):
    incident = make_incident()
    entry = make_entry(incident)
    assert client_logged_in.post(url(incident, "timeline", "add"), {}).status_code == 403
    assert client_logged_in.post(url(incident, "timeline", entry.pk, "delete")).status_code == 403
    assert client_logged_in.post(url(incident, "timeline", "paste"), {}).status_code == 403
    assert TimelineEntry.objects.filter(pk=entry.pk).exists()


# Paste --------------------------------------------------------------------------------------

PASTE = "09:12 Alert fired for checkout\n[09:15] maria: rolling back\n09:40 All clear, resolved"


def test_paste_preview_saves_nothing(client_logged_in, draft):
    """A preview shows each line with its time and guessed kind; nothing is stored."""
    response = client_logged_in.post(
        url(draft, "timeline", "paste"), {"text": PASTE, "action": "preview"}, headers=HX
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "Preview of 3 entries" in body and "Add 3 entries" in body
    assert "maria: rolling back" in body
    assert not TimelineEntry.objects.exists()


def test_paste_add_saves_every_entry_with_chosen_kinds(client_logged_in, draft):
    """ "Add" stores all lines at once, in the author's zone, kinds as chosen in the preview."""
    response = client_logged_in.post(
        url(draft, "timeline", "paste"),
        {"text": PASTE, "action": "add", "kind-1": "detection"},
        headers=HX,
    )
    assert response.status_code == 200
    assert b"Added 3 entries." in response.content
    entries = list(draft.timeline_entries.all())
    assert [(e.at.hour, e.at.minute, e.kind) for e in entries] == [
        (9, 12, "detection"), (9, 15, "mitigation"), (9, 40, "resolution"),
    ]  # fmt: skip


def test_paste_with_a_bad_line_saves_nothing_and_names_the_line(client_logged_in, draft):
    """Asking to add while a line is bad adds nothing and says which line."""
    text = "09:12 Alert fired\nno time here\n09:40 Resolved"
    response = client_logged_in.post(
        url(draft, "timeline", "paste"), {"text": text, "action": "add"}, headers=HX
    )
    body = response.content.decode()
    assert "Nothing was added: 1 line needs fixing" in body
    assert "<strong>Line 2</strong>" in body and "no time here" in body
    assert "Skip 1 bad line, add 2 entries" in body
    assert not TimelineEntry.objects.exists()


def test_paste_skipping_bad_lines_adds_the_good_ones(client_logged_in, draft):
    """Only when the author chooses to skip them are the good lines added."""
    text = "09:12 Alert fired\nno time here\n09:40 Resolved"
    response = client_logged_in.post(
        url(draft, "timeline", "paste"), {"text": text, "action": "add-skipping"}
    )
    assert response.status_code == 302
    assert draft.timeline_entries.count() == 2


def test_paste_nothing_parses(client_logged_in, draft):
    response = client_logged_in.post(
        url(draft, "timeline", "paste"), {"text": "just words", "action": "add-skipping"}
    )
    assert response.status_code == 200
    assert not TimelineEntry.objects.exists()


def test_paste_empty_is_a_field_error(client_logged_in, draft):
    response = client_logged_in.post(url(draft, "timeline", "paste"), {"text": ""}, headers=HX)
    assert b"Paste at least one line." in response.content


def test_paste_dates_follow_the_incident_start_in_the_authors_zone(client, user, draft):
    """Lines with only a time fall on the day the incident started, in the author's zone."""
    from incidents.models import Profile

    Profile.objects.create(user=user, timezone="America/New_York")
    client.post("/accounts/login/", {"username": "alice", "password": "pw-for-tests-123"})
    client.post(url(draft, "timeline", "paste"), {"text": "04:30 Alert", "action": "add"})
    entry = draft.timeline_entries.get()
    # 9:00 UTC is 04:00 in New York on 2 March; 04:30 New York is 09:30 UTC.
    assert entry.at == dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)


# Factors ------------------------------------------------------------------------------------


def test_add_factor_with_evidence(client_logged_in, draft):
    entry = make_entry(draft, kind="detection", text="Alert fired")
    response = client_logged_in.post(
        url(draft, "factors", "add"),
        {"new-category": "monitoring", "new-description": "The alert needed 5 minutes.",
         "new-evidence": [entry.pk]},
        headers=HX,
    )  # fmt: skip
    assert response.status_code == 200
    factor = ContributingFactor.objects.get()
    assert list(factor.evidence.all()) == [entry]
    assert b"Incidents rarely have a single root cause" in response.content


def test_single_factor_hint_only_with_exactly_one(client_logged_in, draft):
    hint = b"Incidents rarely have a single root cause"
    assert hint not in client_logged_in.get(url(draft, "factors")).content
    make_factor(draft)
    assert hint in client_logged_in.get(url(draft, "factors")).content
    make_factor(draft)
    assert hint not in client_logged_in.get(url(draft, "factors")).content


def test_evidence_only_from_this_incidents_timeline(client_logged_in, draft, user):
    foreign = make_entry(make_incident(authors=[user]))
    response = client_logged_in.post(
        url(draft, "factors", "add"),
        {"new-category": "process", "new-description": "x", "new-evidence": [foreign.pk]},
    )
    assert response.status_code == 200
    assert b"Select a valid choice" in response.content
    assert not ContributingFactor.objects.exists()


def test_accepting_a_risk_needs_a_reason(client_logged_in, draft):
    response = client_logged_in.post(
        url(draft, "factors", "add"),
        {"new-category": "dependency", "new-description": "Vendor outage",
         "new-accepted_risk": "on"},
    )  # fmt: skip
    assert b"Say why the risk is accepted" in response.content
    assert not ContributingFactor.objects.exists()


def test_factor_without_timeline_points_to_the_timeline(client_logged_in, draft):
    body = client_logged_in.get(url(draft, "factors")).content.decode()
    assert "Add timeline entries</a> first" in body


# Action items -------------------------------------------------------------------------------


def action_data(team, **overrides):
    data = {"new-title": "Require a canary for config pushes", "new-kind": "prevent",
            "new-team": team.pk, "new-due": "2099-01-31", "new-priority": "high"}  # fmt: skip
    data.update(overrides)
    return data


def test_add_action_item_addressing_a_factor(client_logged_in, draft):
    team = make_team()
    factor = make_factor(draft)
    response = client_logged_in.post(
        url(draft, "actions", "add"), action_data(team, **{"new-addresses": [factor.pk]})
    )
    assert response.status_code == 302
    item = ActionItem.objects.get()
    assert (item.team, item.due, item.status) == (team, dt.date(2099, 1, 31), "open")
    assert list(item.addresses.all()) == [factor]


@pytest.mark.parametrize(
    ("missing", "message"),
    [("new-team", b"Every action item needs an owner team."),
     ("new-due", b"Every action item needs a due date")],
)  # fmt: skip
def test_action_item_needs_an_owner_team_and_a_due_date(client_logged_in, draft, missing, message):
    data = action_data(make_team())
    data[missing] = ""
    response = client_logged_in.post(url(draft, "actions", "add"), data, headers=HX)
    assert response.status_code == 200
    assert message in response.content
    assert not ActionItem.objects.exists()


def test_new_action_item_due_in_the_past_is_refused(client_logged_in, draft):
    response = client_logged_in.post(
        url(draft, "actions", "add"), action_data(make_team(), **{"new-due": "2020-01-01"})
    )
    assert b"The due date is in the past" in response.content


def test_people_fixing_action_item_is_flagged_but_accepted(client_logged_in, draft):
    """ "Be more careful" is saved — the checker advises — and shown with an alternative."""
    response = client_logged_in.post(
        url(draft, "actions", "add"),
        action_data(make_team(), **{"new-title": "Be more careful with config pushes"}),
        headers=HX,
    )
    body = response.content.decode()
    assert ActionItem.objects.filter(title__startswith="Be more careful").exists()
    assert "<mark>Be more careful</mark>" in body
    assert "This asks people to change, not the system" in body


def test_edit_action_item_keeps_its_status_and_moves_its_version(client_logged_in, draft):
    """Editing in the write-up never resets what the action list changed (status)."""
    team = make_team()
    item = make_action_item(draft, team=team, status="in_progress")
    body = client_logged_in.get(url(draft, "actions", item.pk), headers=HX).content.decode()
    base = body.split('name="row_base" value="')[1].split('"')[0]
    response = client_logged_in.post(
        url(draft, "actions", item.pk),
        {f"row{item.pk}-title": "Renamed", f"row{item.pk}-kind": "detect",
         f"row{item.pk}-team": team.pk, f"row{item.pk}-due": item.due.isoformat(),
         f"row{item.pk}-priority": "low", "row_base": base},
    )  # fmt: skip
    assert response.status_code == 302
    item.refresh_from_db()
    assert (item.title, item.status, item.version) == ("Renamed", "in_progress", 2)


def test_actions_step_lists_factors_needing_an_action(client_logged_in, draft):
    make_factor(draft, description="Alert baseline too long")
    body = client_logged_in.get(url(draft, "actions")).content.decode()
    assert "needs an action item" in body and "accept it as a risk" in body


def test_dismissing_a_row_finding_without_js(client_logged_in, draft):
    """The findings under a saved row are a real form: dismiss works without JavaScript."""
    make_action_item(draft, title="Be more careful", team=make_team())
    body = client_logged_in.get(url(draft, "actions")).content.decode()
    assert "<mark>Be more careful</mark>" in body
    token = body.split('name="dismiss" value="')[1].split('"')[0]
    response = client_logged_in.post(
        f"/incidents/{draft.slug}/edit/blame/dismiss/",
        {"dismiss": token.replace("&#x27;", "'"), "next": url(draft, "actions")},
    )
    assert response["Location"] == url(draft, "actions")
    assert (
        "<mark>Be more careful</mark>"
        not in client_logged_in.get(url(draft, "actions")).content.decode()
    )


def test_editing_an_entry_keeps_a_position_changed_meanwhile(client_logged_in, draft):
    """An edit writes only what its form holds: a reorder made meanwhile survives."""
    entry = make_entry(draft, text="Original", position=1)
    body = client_logged_in.get(url(draft, "timeline", entry.pk), headers=HX).content.decode()
    base = body.split('name="row_base" value="')[1].split('"')[0]
    TimelineEntry.objects.filter(pk=entry.pk).update(position=7)
    response = client_logged_in.post(
        url(draft, "timeline", entry.pk),
        {f"row{entry.pk}-at": "2026-03-02T09:20", f"row{entry.pk}-kind": "action",
         f"row{entry.pk}-text": "Edited", "row_base": base},
    )  # fmt: skip
    assert response.status_code == 302
    entry.refresh_from_db()
    assert (entry.text, entry.position) == ("Edited", 7)
