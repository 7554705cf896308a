"""The /actions/ pages over HTTP: the dashboard (full page and htmx partial), facet counts,
CSV export, bulk update, inline edit with the version check, verification, the item page."""

import csv
import datetime as dt
import io
from types import SimpleNamespace

import pytest
from django.utils import timezone

from incidents.models import ActionItem
from tests.factories import make_action_item, make_incident, make_team, make_user

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
LINK = "https://git.example.com/ops/pull/42"


@pytest.fixture
def manager(client, db):
    person = make_user(username="mona", is_staff=True)
    client.force_login(person)
    return person


# --- The dashboard -------------------------------------------------------------------------------


def test_dashboard_full_page_and_partial(client_logged_in):
    """The full page has the filters; the htmx partial is only the results section."""
    make_action_item(title="Alert on canary errors")
    page = client_logged_in.get("/actions/")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'id="filters"' in body and "Alert on canary errors" in body
    assert "1 action item" in body
    partial = client_logged_in.get("/actions/", headers=HX)
    text = partial.content.decode()
    assert partial.status_code == 200
    assert text.lstrip().startswith('<section id="results"')
    assert "<html" not in text and "Alert on canary errors" in text
    assert "HX-Request" in partial["Vary"]


def test_dashboard_filters_by_get_parameters(client_logged_in):
    """Filters are bookmarkable GET parameters, including the CONTRACT's `overdue=1`."""
    team = make_team(slug="payments")
    make_action_item(title="Late payments item", team=team, due=dt.date(2020, 1, 1))
    make_action_item(title="Future item")
    body = client_logged_in.get("/actions/?team=payments&overdue=1").content.decode()
    assert "Late payments item" in body and "Future item" not in body
    assert 'value="overdue" selected' in body
    body = client_logged_in.get("/actions/?due=overdue").content.decode()
    assert "Escalated" in body  # overdue by years: flagged


def test_unknown_filter_value_is_ignored_with_a_note(client_logged_in):
    make_action_item(title="Still listed")
    response = client_logged_in.get("/actions/?status=bogus&team=nope&page=abc&sort=x")
    body = response.content.decode()
    assert response.status_code == 200
    assert "Unknown status “bogus” was ignored." in body
    assert "There is no team “nope”" in body
    assert "Still listed" in body


@pytest.mark.parametrize("vendor", ["sqlite", "postgresql"])
def test_private_items_are_not_listed_or_opened(client_logged_in, monkeypatch, vendor):
    """Items of a write-up the reader may not see appear nowhere and their pages are 404,
    whether the dashboard pages by a list of ids or tests the rule inside its query (the way
    it takes on each database; both are run on both)."""
    from incidents import action_views

    monkeypatch.setattr(action_views, "connection", SimpleNamespace(vendor=vendor))
    hidden = make_action_item(make_incident(status="draft"), title="Secret follow-up")
    make_action_item(title="Public follow-up")
    body = client_logged_in.get("/actions/").content.decode()
    assert "Secret follow-up" not in body
    assert "Public follow-up" in body and "1 action item<" in body
    assert b"Secret follow-up" not in client_logged_in.get("/actions/export.csv").getvalue()
    assert client_logged_in.get(f"/actions/{hidden.pk}/").status_code == 404
    assert client_logged_in.post(f"/actions/{hidden.pk}/verify/").status_code == 404


def test_pagination_keeps_the_filters(client_logged_in):
    from incidents.action_views import PER_PAGE

    for n in range(PER_PAGE + 5):
        make_action_item(title=f"Item {n}", priority="low")
    body = client_logged_in.get("/actions/?priority=low").content.decode()
    assert f"{PER_PAGE + 5} action items" in body and "Page 1 of 2" in body
    assert "?priority=low&amp;page=2" in body
    second = client_logged_in.get("/actions/?priority=low&page=2").content.decode()
    assert second.count('class="item-title"') == 5


def test_facets_partial_and_full_page(client_logged_in):
    """Counts beside each filter come from /actions/facets/: the form as a partial for htmx,
    the whole page (with counts) without JavaScript."""
    team = make_team(name="Payments", slug="payments")
    make_action_item(team=team, priority="low")
    make_action_item(team=team, priority="high")
    partial = client_logged_in.get("/actions/facets/?team=payments", headers=HX)
    text = partial.content.decode()
    assert text.lstrip().startswith('<form id="filters"')
    assert "Payments (2)" in text and "Low (1)" in text and "High (1)" in text
    full = client_logged_in.get("/actions/facets/?team=payments").content.decode()
    assert "<html" in full and "Payments (2)" in full and 'id="results"' in full


@pytest.mark.parametrize("url", ["/actions/", "/actions/?overdue=1", "/actions/facets/"])
def test_dashboard_queries_do_not_grow(client, django_assert_max_num_queries, url):
    """A fixed number of queries (≤ 12) whatever the number of rows, for staff and others."""
    reader = make_user()
    reviewer = make_user()
    client.force_login(reader)

    def build(n):
        team = make_team()
        team.members.add(reader)
        for i in range(n):
            incident = make_incident(reviewers=[reviewer])
            make_action_item(incident, team=team, owner=reviewer, due=dt.date(2020, 1, 1 + i))

    def count():
        with django_assert_max_num_queries(12) as captured:
            assert (
                client.get(url + ("&" if "?" in url else "?") + "team=&owner=").status_code == 200
            )
        return len(captured.captured_queries)

    build(2)
    few = count()
    build(20)
    assert count() == few


# --- CSV export ----------------------------------------------------------------------------------


def test_export_csv_has_the_filtered_items_and_neutralises_formulas(client_logged_in):
    team = make_team(slug="payments")
    make_action_item(title='=HYPERLINK("http://evil")', team=team)
    make_action_item(title="+cmd", team=team, tracker_url="https://t.example.com/1")
    make_action_item(title="-2+3", team=team)
    make_action_item(title="@SUM(A1)", team=team)
    make_action_item(title="\tTabbed", team=team)
    make_action_item(title="Ünïcode ✓ plain", team=team)
    make_action_item(title="Other team")
    response = client_logged_in.get("/actions/export.csv?team=payments")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.getvalue().decode("utf-8"))))
    assert rows[0][:3] == ["id", "title", "incident"]
    titles = {row[1] for row in rows[1:]}
    assert titles == {
        "'=HYPERLINK(\"http://evil\")", "'+cmd", "'-2+3", "'@SUM(A1)", "'\tTabbed",
        "Ünïcode ✓ plain",
    }  # fmt: skip
    assert all(row[6] == "payments" for row in rows[1:])


# --- Bulk update ---------------------------------------------------------------------------------


def test_bulk_update_plain_post_redirects_with_message(client, manager):
    owner = make_user(username="bea")
    items = [make_action_item() for _ in range(12)]
    response = client.post(
        "/actions/bulk/",
        {"items": [item.pk for item in items], "owner": "bea", "priority": "low",
         "return_query": "priority=low"},
    )  # fmt: skip
    assert response.status_code == 302
    assert response["Location"] == "/actions/?priority=low"
    page = client.get(response["Location"]).content.decode()
    assert "12 action items updated." in page
    assert set(ActionItem.objects.values_list("owner_id", "priority")) == {(owner.pk, "low")}


def test_bulk_update_htmx_answers_with_the_results(client, manager):
    items = [make_action_item() for _ in range(2)]
    response = client.post(
        "/actions/bulk/",
        {"items": [i.pk for i in items], "status": "in_progress", "return_query": ""},
        headers=HX,
    )
    text = response.content.decode()
    assert response.status_code == 200
    assert text.lstrip().startswith('<section id="results"')
    assert "2 action items updated." in text
    assert response["HX-Trigger"] == "actions-changed"


def test_bulk_all_on_this_page(client, manager):
    """“All on this page” works without JavaScript: the page's ids travel with the form."""
    items = [make_action_item() for _ in range(3)]
    client.post(
        "/actions/bulk/",
        {"page_all": "1", "page_items": ",".join(str(i.pk) for i in items), "priority": "low"},
    )
    assert set(ActionItem.objects.values_list("priority", flat=True)) == {"low"}


def test_bulk_with_invalid_value_changes_nothing_and_says_which(client, manager):
    items = [make_action_item() for _ in range(2)]
    response = client.post(
        "/actions/bulk/",
        {"items": [i.pk for i in items], "owner": "nobody-here", "priority": "low"},
        headers=HX,
    )
    assert response.status_code == 200
    assert "Nobody has the username “nobody-here”" in response.content.decode()
    assert set(ActionItem.objects.values_list("priority", flat=True)) == {"high"}
    response = client.post(
        "/actions/bulk/", {"items": [i.pk for i in items], "due": "not-a-date", "status": "x"}
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "Enter a valid date." in body and "Select a valid choice" in body
    # The selection survives the error.
    assert body.count("checked") >= 2


def test_bulk_close_requires_evidence_and_reports_conflicts(client, manager):
    a = make_action_item(kind="process")
    b = make_action_item(kind="process")
    response = client.post("/actions/bulk/", {"items": [a.pk, b.pk], "status": "done"})
    assert "needs a link to what changed" in response.content.decode()
    response = client.post(
        "/actions/bulk/",
        {"items": [a.pk, b.pk], "status": "done", "change_url": LINK, f"v{a.pk}": "5"},
        headers=HX,
    )
    assert response.status_code == 409
    assert "Someone else changed" in response.content.decode()
    assert set(ActionItem.objects.values_list("status", flat=True)) == {"open"}
    response = client.post(
        "/actions/bulk/", {"items": [a.pk, b.pk], "status": "done", "change_url": LINK}
    )
    assert response.status_code == 302
    assert set(ActionItem.objects.values_list("status", flat=True)) == {"done"}


def test_bulk_requires_post(client_logged_in):
    assert client_logged_in.get("/actions/bulk/").status_code == 405


# --- Inline edit ---------------------------------------------------------------------------------


def test_inline_edit_form_partial_and_plain_fallback(client, manager):
    item = make_action_item(title="Rotate the certificates")
    partial = client.get(f"/actions/{item.pk}/edit/", headers=HX).content.decode()
    assert partial.lstrip().startswith(f'<tr id="action-row-{item.pk}" class="editing">')
    assert 'name="version" value="1"' in partial
    # The row edits status, owner and due date; the item's page also priority. Both close
    # with evidence.
    assert 'name="owner"' in partial and 'name="priority"' not in partial
    full = client.get(f"/actions/{item.pk}/edit/").content.decode()
    assert "<html" in full and "Rotate the certificates" in full and 'name="priority"' in full
    for page in (partial, full):
        assert 'name="change_url"' in page and 'name="verification"' in page
        assert 'name="reason"' in page


def test_inline_edit_saves_and_returns_the_row(client, manager):
    owner = make_user(username="omar")
    item = make_action_item()
    response = client.post(
        f"/actions/{item.pk}/edit/",
        {"version": 1, "status": "in_progress", "owner": "omar", "due": "2030-01-31"},
        headers=HX,
    )
    text = response.content.decode()
    assert response.status_code == 200
    assert text.lstrip().startswith(f'<tr id="action-row-{item.pk}"') and "editing" not in text
    item.refresh_from_db()
    assert (item.status, item.owner, item.due, item.version) == (
        "in_progress", owner, dt.date(2030, 1, 31), 2,
    )  # fmt: skip


def test_inline_edit_conflict_is_409_with_a_clear_message(client, manager):
    """A stale version gets 409, the other person's values, and no silent overwrite."""
    item = make_action_item()
    ActionItem.objects.filter(pk=item.pk).update(version=2, priority="low", status="in_progress")
    response = client.post(
        f"/actions/{item.pk}/edit/",
        {"version": 1, "status": "open", "owner": "", "due": ""},
        headers=HX,
    )
    text = response.content.decode()
    assert response.status_code == 409
    assert "Someone else changed" in text and "in progress" in text
    assert 'name="version" value="2"' in text
    assert ActionItem.objects.get(pk=item.pk).status == "in_progress"
    plain = client.post(
        f"/actions/{item.pk}/edit/", {"version": 1, "status": "open", "owner": "", "due": ""}
    )
    assert plain.status_code == 409 and "<html" in plain.content.decode()


def test_inline_close_without_evidence_shows_errors_in_the_row(client, manager):
    item = make_action_item(kind="detect")
    response = client.post(
        f"/actions/{item.pk}/edit/", {"version": 1, "status": "done", "owner": "", "due": ""},
        headers=HX,
    )  # fmt: skip
    text = response.content.decode()
    assert response.status_code == 200
    assert "needs a link to what changed" in text and "how you verified" in text
    assert ActionItem.objects.get(pk=item.pk).status == "open"


def test_inline_edit_past_due_asks_for_confirmation(client, manager):
    item = make_action_item()
    data = {"version": 1, "status": "open", "owner": "", "due": "2020-01-01"}
    response = client.post(f"/actions/{item.pk}/edit/", data, headers=HX)
    assert "is in the past" in response.content.decode()
    assert 'name="confirm_past_due"' in response.content.decode()
    client.post(f"/actions/{item.pk}/edit/", {**data, "confirm_past_due": "on"}, headers=HX)
    assert ActionItem.objects.get(pk=item.pk).due == dt.date(2020, 1, 1)


def test_outsider_cannot_edit_over_http(client_logged_in):
    item = make_action_item()
    assert client_logged_in.get(f"/actions/{item.pk}/edit/").status_code == 403
    response = client_logged_in.post(
        f"/actions/{item.pk}/edit/", {"version": 1, "status": "open", "owner": "", "due": ""}
    )
    assert response.status_code == 403


def test_item_page_plain_edit_redirects(client, manager):
    item = make_action_item(kind="learn")
    response = client.post(
        f"/actions/{item.pk}/edit/",
        {"version": 1, "status": "done", "owner": "", "due": "", "priority": "medium",
         "change_url": LINK, "next": "/actions/?status=all"},
    )  # fmt: skip
    assert response.status_code == 302 and response["Location"] == "/actions/?status=all"
    item.refresh_from_db()
    assert item.status == "done" and item.priority == "medium"


def test_edit_refuses_an_offsite_next(client, manager):
    item = make_action_item()
    response = client.post(
        f"/actions/{item.pk}/edit/",
        {"version": 1, "status": "in_progress", "owner": "", "due": "",
         "next": "https://evil.example.com/"},
    )  # fmt: skip
    assert response["Location"] == f"/actions/{item.pk}/"


def test_cancel_puts_the_row_back(client, manager):
    item = make_action_item(title="Cancel me")
    text = client.get(f"/actions/{item.pk}/row/", headers=HX).content.decode()
    assert text.lstrip().startswith(f'<tr id="action-row-{item.pk}"') and "Cancel me" in text
    assert client.get(f"/actions/{item.pk}/row/").status_code == 302


# --- Verification and the item page --------------------------------------------------------------


def test_reviewer_verifies_from_the_row_and_the_item_page(client):
    reviewer = make_user()
    client.force_login(reviewer)
    incident = make_incident(reviewers=[reviewer])
    item = make_action_item(incident, status="done", evidence=f"**What changed:** <{LINK}>")
    page = client.get(f"/actions/{item.pk}/").content.decode()
    assert "Mark verified effective" in page and f'href="{LINK}"' in page
    row = client.post(f"/actions/{item.pk}/verify/", {"verified": "1"}, headers=HX)
    assert row.status_code == 200 and "Verified effective" in row.content.decode()
    item.refresh_from_db()
    assert item.verified_by == reviewer
    response = client.post(f"/actions/{item.pk}/verify/", {"verified": "0"})
    assert response.status_code == 302
    assert ActionItem.objects.get(pk=item.pk).verified_effective_at is None


def test_non_reviewer_cannot_verify(client_logged_in):
    item = make_action_item(status="done", evidence="x")
    response = client_logged_in.post(f"/actions/{item.pk}/verify/", headers=HX)
    assert response.status_code == 403
    response = client_logged_in.post(f"/actions/{item.pk}/verify/", follow=True)
    assert "Only a reviewer" in response.content.decode()
    assert ActionItem.objects.get(pk=item.pk).verified_effective_at is None


def test_incident_page_shows_evidence_verification_and_overdue(client_logged_in):
    incident = make_incident()
    make_action_item(
        incident, title="Verified fix", status="done", evidence=f"What changed: {LINK}",
        verified_effective_at=timezone.now(),
    )  # fmt: skip
    make_action_item(incident, title="Late fix", due=dt.date(2020, 1, 1))
    body = client_logged_in.get(incident.get_absolute_url()).content.decode()
    assert "Verified effective" in body and f'href="{LINK}"' in body
    assert "Overdue" in body


def test_the_kept_bulk_fields_are_what_a_blank_form_renders(client, django_user_model):
    """The bulk bar's blank fields are rendered once per process; they must not drift from a
    fresh rendering, and a form sent back with errors must show its errors, not the blank."""
    from django.template.loader import render_to_string

    from incidents.action_views import BulkForm, blank_bulk_fields

    fresh = render_to_string("incidents/actions.html#bulk_fields", {"bulk_form": BulkForm()})
    assert blank_bulk_fields() == fresh
    assert 'name="status"' in fresh and 'name="reason"' in fresh

    user = make_user()
    client.force_login(user)
    make_action_item(make_incident(authors=[user]))
    page = client.get("/actions/").content.decode()
    assert fresh.strip() in page
    refused = client.post("/actions/bulk/", {"due": "not a date", "items": ["1"]})
    assert refused.status_code == 200  # validation errors re-render in place (debrief.js)
    assert "Enter a valid date." in refused.content.decode()
