"""The team, service and tag pages, and the home page's "my and my teams' action items".

Guards: what each block shows (and its empty state), that private write-ups leak through none of
them, and that the number of queries stays fixed whatever the data size.
"""

import ast
import datetime as dt
from pathlib import Path

import pytest
from django.utils import timezone

from incidents import actions
from incidents.models import ActionItem, Incident
from lessons.models import Lesson
from tests.factories import (
    make_action_item,
    make_factor,
    make_incident,
    make_service,
    make_tag,
    make_team,
    make_user,
)

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()


def days_ago(n: int) -> dt.datetime:
    return timezone.now() - dt.timedelta(days=n)


def make_lesson(*incidents, tags=(), **fields):
    lesson = Lesson.objects.create(
        title=fields.pop("title", "Canaries catch what dashboards miss"),
        body=fields.pop("body", "We learned to watch the canary."),
        **fields,
    )
    lesson.incidents.add(*incidents)
    lesson.tags.add(*tags)
    return lesson


def private_incident(**fields):
    """Published, but readable only by people named on it."""
    return make_incident(
        title=fields.pop("title", "Zebra-secret credential leak"),
        visibility=Incident.Visibility.PEOPLE,
        **fields,
    )


# --- Team page ------------------------------------------------------------------------------------


def test_team_page_lists_open_items_overdue_first_with_owner_due_and_badges(
    client_logged_in, settings
):
    """Overdue items come first, each with its owner and due date; an item overdue by more than
    DEBRIEF_ESCALATION_DAYS is marked escalated, a merely late one only overdue."""
    settings.DEBRIEF_ESCALATION_DAYS = 14
    team = make_team(slug="payments", name="Payments")
    owner = make_user(username="olga", first_name="Olga", last_name="Owner")
    incident = make_incident(teams=[team])
    make_action_item(incident, team=team, title="Later one", due=TODAY + dt.timedelta(days=9))
    make_action_item(incident, team=team, title="Undated one", due=None)
    make_action_item(incident, team=team, title="Late one", due=TODAY - dt.timedelta(days=3),
                     owner=owner)  # fmt: skip
    make_action_item(incident, team=team, title="Very late one",
                     due=TODAY - dt.timedelta(days=30))  # fmt: skip
    make_action_item(incident, team=team, title="Closed one", status=ActionItem.Status.DONE)
    response = client_logged_in.get("/teams/payments/")
    assert response.status_code == 200
    rows = response.context["open_items"]["rows"]
    assert [r.title for r in rows] == ["Very late one", "Late one", "Later one", "Undated one"]
    assert [(r.days_late, r.escalated) for r in rows] == [(30, True), (3, False), (0, False),
                                                          (0, False)]  # fmt: skip
    counts = response.context["open_items"]
    assert (counts["total"], counts["overdue"], counts["escalated"]) == (4, 2, 1)
    body = response.content.decode()
    assert "Olga Owner" in body and "Overdue 3 days" in body and "Escalated" in body
    assert body.count('class="badge escalated"') == 1
    assert "no due date" in body and "No owner" in body


def test_team_page_counts_all_open_items_but_lists_the_first_twenty(client_logged_in):
    team = make_team(slug="busy")
    incident = make_incident(teams=[team])
    for n in range(23):
        make_action_item(incident, team=team, due=TODAY + dt.timedelta(days=n))
    response = client_logged_in.get("/teams/busy/")
    assert len(response.context["open_items"]["rows"]) == 20
    assert response.context["open_items"]["total"] == 23
    assert "the first 20 shown" in response.content.decode()


def test_team_page_shows_recently_closed_items_and_whether_they_worked(client_logged_in):
    """Done and won't-do items of the last 90 days, newest first, "verified effective" shown;
    older closings and open items are not in this block."""
    team = make_team(slug="payments")
    reviewer = make_user()
    incident = make_incident(teams=[team])
    verified = make_action_item(incident, team=team, title="Verified fix", status="done")
    ActionItem.objects.filter(pk=verified.pk).update(
        completed_at=days_ago(5), verified_effective_at=days_ago(1), verified_by=reviewer
    )
    unverified = make_action_item(incident, team=team, title="Unverified fix", status="done")
    ActionItem.objects.filter(pk=unverified.pk).update(completed_at=days_ago(2))
    make_action_item(incident, team=team, title="Dropped idea", status="wont_do",
                     wont_do_reason="Too costly")  # fmt: skip
    old = make_action_item(incident, team=team, title="Ancient fix", status="done")
    ActionItem.objects.filter(pk=old.pk).update(completed_at=days_ago(200))
    make_action_item(incident, team=team, title="Still open")
    response = client_logged_in.get("/teams/payments/")
    closed = response.context["closed_items"]
    assert [r.title for r in closed["rows"]] == ["Dropped idea", "Unverified fix", "Verified fix"]
    assert (closed["total"], closed["verified"]) == (3, 1)
    body = response.content.decode()
    assert "Verified effective" in body and "not yet verified" in body
    assert "Ancient fix" not in body
    assert "3 closed in the last 90 days · 1 verified effective" in body


def test_team_page_lists_the_latest_twenty_incidents_with_a_link_to_all(client_logged_in):
    team = make_team(slug="payments")
    for n in range(22):
        make_incident(teams=[team], title=f"Payments incident {n}", started_at=days_ago(n + 1))
    make_incident(title="Someone else's incident")
    response = client_logged_in.get("/teams/payments/")
    incidents = response.context["incidents"]
    assert len(incidents) == 20 and response.context["more_incidents"]
    assert incidents[0].title == "Payments incident 0"
    body = response.content.decode()
    assert "The latest 20" in body
    assert 'href="/incidents/?team=payments"' in body
    assert "Someone else&#x27;s incident" not in body


def test_team_page_with_few_incidents_lists_them_all(client_logged_in):
    team = make_team(slug="small")
    make_incident(teams=[team], title="Only one")
    response = client_logged_in.get("/teams/small/")
    assert not response.context["more_incidents"]
    assert "1 incident ·" in response.content.decode()


def test_team_page_links_to_its_action_items_incidents_and_trends(client_logged_in):
    make_team(slug="payments")
    body = client_logged_in.get("/teams/payments/").content.decode()
    for href in ("/actions/?team=payments", "/actions/?team=payments&amp;overdue=1",
                 "/incidents/?team=payments", "/metrics/?team=payments"):  # fmt: skip
        assert f'href="{href}"' in body


def test_team_page_recurrence_counts_incidents_per_factor_category(client_logged_in):
    """Incidents (not factors) per category, in the last 90 days and in the last year, most
    frequent lately first; drafts, older incidents and other teams' incidents do not count."""
    team = make_team(slug="payments")
    for started in (days_ago(3), days_ago(20), days_ago(200), days_ago(400)):
        incident = make_incident(teams=[team], started_at=started)
        make_factor(incident, category="monitoring")
        make_factor(incident, category="monitoring")
    make_factor(make_incident(teams=[team], started_at=days_ago(10)), category="change")
    make_factor(make_incident(teams=[team], status="draft"), category="capacity")
    make_factor(make_incident(started_at=days_ago(4)), category="capacity")
    response = client_logged_in.get("/teams/payments/")
    recurring = [(r["category"], r["recent"], r["total"]) for r in response.context["recurring"]]
    assert recurring == [("monitoring", 2, 3), ("change", 1, 1)]
    body = response.content.decode()
    assert "Monitoring &amp; alerting gap" in body and "2 in 90 days · 3 in a year" in body
    assert 'href="/incidents/?team=payments&amp;category=monitoring"' in body


def test_team_page_shows_lessons_drawn_from_its_incidents(client_logged_in, user):
    team = make_team(slug="payments")
    incident = make_incident(teams=[team])
    make_lesson(incident, title="Watch the canary", useful_count=2)
    make_lesson(incident, title="Rehearse the rollback")
    make_lesson(make_incident(), title="Another team's lesson")
    make_lesson(incident, title="Someone's draft", is_published=False, author=make_user())
    make_lesson(incident, title="My own draft", is_published=False, author=user)
    response = client_logged_in.get("/teams/payments/")
    titles = [lesson.title for lesson in response.context["lessons"]]
    assert titles[0] == "Watch the canary"
    assert set(titles) == {"Watch the canary", "Rehearse the rollback", "My own draft"}


def test_team_page_empty_states(client_logged_in):
    make_team(slug="quiet", name="Quiet")
    response = client_logged_in.get("/teams/quiet/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "No open action items" in body
    assert "Nothing closed in the last 90 days" in body
    assert "No incidents you can read involve it yet" in body
    assert "No lessons drawn from these incidents yet" in body
    assert "No contributing factors recorded on these incidents in the last year" in body


def test_unknown_team_service_and_tag_are_404(client_logged_in):
    for url in ("/teams/nope/", "/services/nope/", "/tags/nope/"):
        assert client_logged_in.get(url).status_code == 404, url


# --- Private write-ups never leak -----------------------------------------------------------------


def private_world():
    """A team, service and tag whose one private incident has an open and a closed item, a
    factor and a lesson; a member of the team who may not read it; and a named reader."""
    team = make_team(slug="secops", name="Secops")
    service, tag = make_service(slug="vault"), make_tag(slug="keys")
    outsider, reader = make_user(teams=[team]), make_user()
    incident = private_incident(teams=[team], services=[service], tags=[tag],
                                started_at=days_ago(5))  # fmt: skip
    incident.visible_users.add(reader)
    make_action_item(incident, team=team, title="Zebra-secret rotation runbook",
                     due=TODAY - dt.timedelta(days=40))  # fmt: skip
    make_action_item(incident, team=team, title="Zebra-secret audit", status="done")
    make_factor(incident, category="tooling")
    make_lesson(incident, title="Zebra-secret lesson")
    return outsider, reader


@pytest.mark.parametrize("url", ["/teams/secops/", "/services/vault/", "/tags/keys/", "/"])
def test_pages_do_not_reveal_a_private_incident_to_someone_who_may_not_read_it(client, url):
    """Not its title, its action items, its lesson, nor its factor in the counts — even for a
    member of the team it belongs to."""
    outsider, _reader = private_world()
    client.force_login(outsider)
    response = client.get(url)
    assert response.status_code == 200
    assert b"Zebra-secret" not in response.content
    context = response.context
    if url != "/":
        assert context["incidents"] == [] and context["recurring"] == []
        assert context["open_items"]["total"] == 0 and context["lessons"] == []
        assert b"Tooling" not in response.content
    else:
        assert context["my_actions"]["rows"] == []
    if url == "/teams/secops/":
        assert context["closed_items"]["total"] == 0


def test_readable_fast_path_agrees_with_visible_to():
    """The pages leave out `hidden_incident_ids` instead of filtering by `visible_to` row by
    row; both must admit exactly the same incidents and items, for everyone."""
    from incidents.views import _readable

    outsider, reader = private_world()
    author = make_user()
    make_incident(status="draft", authors=[author], title="A draft")
    make_incident(status="draft", title="Someone else's draft")
    make_incident(title="Public one")
    for person in (outsider, reader, author, make_user(is_staff=True)):
        incidents, items = _readable(person)
        visible = Incident.objects.visible_to(person)
        assert set(incidents) == set(visible), person
        assert set(items) == set(ActionItem.objects.filter(incident__in=visible)), person


@pytest.mark.parametrize("url", ["/teams/secops/", "/services/vault/", "/tags/keys/"])
def test_a_named_reader_does_see_the_private_incident_on_the_pages(client, url):
    _outsider, reader = private_world()
    client.force_login(reader)
    body = client.get(url).content.decode()
    assert "Zebra-secret credential leak" in body
    assert "Zebra-secret rotation runbook" in body and "Zebra-secret lesson" in body
    assert "Tooling" in body


# --- Service and tag pages ------------------------------------------------------------------------


def test_service_page_shows_incidents_open_items_factors_lessons_and_links(client_logged_in):
    owners = make_team(slug="payments", name="Payments")
    other_team = make_team(slug="infra", name="Infra")
    service = make_service(slug="checkout", name="checkout", team=owners)
    first = make_incident(title="Checkout 500s", services=[service], started_at=days_ago(3))
    second = make_incident(title="Checkout slow", services=[service], started_at=days_ago(30))
    make_incident(title="Search down")
    make_factor(first, category="monitoring")
    make_factor(second, category="monitoring")
    make_action_item(first, team=other_team, title="Alert on checkout errors",
                     due=TODAY - dt.timedelta(days=2))  # fmt: skip
    make_action_item(second, team=owners, title="Done already", status="done")
    make_action_item(make_incident(), team=owners, title="Unrelated follow-up")
    make_lesson(first, title="Checkout lesson")
    response = client_logged_in.get("/services/checkout/")
    assert response.status_code == 200
    assert [i.title for i in response.context["incidents"]] == ["Checkout 500s", "Checkout slow"]
    assert [r.title for r in response.context["open_items"]["rows"]] == ["Alert on checkout errors"]
    assert [(r["category"], r["recent"]) for r in response.context["recurring"]] == [
        ("monitoring", 2)
    ]
    body = response.content.decode()
    assert "Checkout lesson" in body and "Search down" not in body
    assert "Unrelated follow-up" not in body and "Done already" not in body
    assert 'href="/teams/infra/"' in body  # the item's team, linked
    assert 'href="/teams/payments/"' in body  # the owning team
    for href in ("/incidents/?service=checkout", "/metrics/?service=checkout",
                 "/incidents/?service=checkout&amp;category=monitoring"):  # fmt: skip
        assert f'href="{href}"' in body
    assert 'class="is-recurring"' in body


def test_tag_page_shows_lessons_tagged_or_drawn_from_its_incidents(client_logged_in):
    tag = make_tag(slug="deploy", name="deploy")
    incident = make_incident(title="Bad deploy", tags=[tag])
    make_action_item(incident, title="Canary every deploy")
    make_lesson(incident, title="Lesson from the deploy")
    make_lesson(title="Tagged near miss", tags=[tag], kind=Lesson.Kind.NEAR_MISS)
    make_lesson(title="Unrelated story")
    response = client_logged_in.get("/tags/deploy/")
    assert response.status_code == 200
    assert {lesson.title for lesson in response.context["lessons"]} == {
        "Lesson from the deploy", "Tagged near miss",
    }  # fmt: skip
    body = response.content.decode()
    assert "Bad deploy" in body and "Canary every deploy" in body
    assert 'href="/incidents/?tag=deploy"' in body and 'href="/lessons/?tag=deploy"' in body


@pytest.mark.parametrize("url", ["/services/empty/", "/tags/empty/"])
def test_service_and_tag_empty_states(client_logged_in, url):
    make_service(slug="empty")
    make_tag(slug="empty")
    body = client_logged_in.get(url).content.decode()
    assert "No open action items" in body
    assert "No incidents you can read involve it yet" in body
    assert "No lessons drawn from these incidents yet" in body
    assert "No contributing factors recorded on these incidents in the last year" in body


# --- Home -----------------------------------------------------------------------------------------


def test_home_lists_my_items_first_then_my_teams(client_logged_in, user):
    """Mine (on any team) first, then my teams' others; overdue ones marked; not other teams'."""
    mine, other = make_team(slug="core", name="Core"), make_team(slug="elsewhere")
    mine.members.add(user)
    make_action_item(team=mine, title="Team item due soon", due=TODAY + dt.timedelta(days=1))
    make_action_item(team=mine, title="Team item overdue", due=TODAY - dt.timedelta(days=5))
    make_action_item(team=other, title="My item elsewhere", owner=user,
                     due=TODAY + dt.timedelta(days=20))  # fmt: skip
    make_action_item(team=mine, title="My item overdue", owner=user,
                     due=TODAY - dt.timedelta(days=1))  # fmt: skip
    make_action_item(team=other, title="Not mine, not my team")
    make_action_item(team=mine, title="Closed team item", status="done")
    response = client_logged_in.get("/")
    rows = response.context["my_actions"]["rows"]
    assert [r.title for r in rows] == [
        "My item overdue", "My item elsewhere", "Team item overdue", "Team item due soon",
    ]  # fmt: skip
    assert [r.is_mine for r in rows] == [True, True, False, False]
    assert not response.context["my_actions"]["more"]
    body = response.content.decode()
    assert "Not mine, not my team" not in body
    assert body.count('class="badge overdue"') == 2
    assert 'href="/actions/?owner=alice"' in body and 'href="/actions/?team=core"' in body


def test_my_open_item_ids_order_limits_and_readability(user):
    """Each group soonest due first, undated last, at most `limit` each; items of write-ups
    the person may not read are left out, and a superuser reads them all."""
    team = make_team()
    team.members.add(user)
    undated = make_action_item(team=team, owner=user, due=None)
    late = make_action_item(team=team, owner=user, due=TODAY - dt.timedelta(days=3))
    soon = make_action_item(team=team, owner=user, due=TODAY + dt.timedelta(days=3))
    theirs = make_action_item(team=team, owner=make_user(), due=TODAY - dt.timedelta(days=9))
    nobodys = make_action_item(team=team, due=TODAY)
    secret = make_action_item(make_incident(status="draft"), team=team, owner=user, due=TODAY)
    make_action_item(team=make_team(), owner=make_user(), due=TODAY)  # another team's
    make_action_item(team=team, owner=user, status="done")

    assert actions.my_open_item_ids(user, [team.pk], 10) == [
        late.pk, soon.pk, undated.pk, theirs.pk, nobodys.pk,
    ]  # fmt: skip
    assert actions.my_open_item_ids(user, [team.pk], 2) == [late.pk, soon.pk, theirs.pk, nobodys.pk]
    assert actions.my_open_item_ids(user, [], 10) == [late.pk, soon.pk, undated.pk]
    boss = make_user(is_superuser=True, is_staff=True)
    secret.owner = boss
    secret.save()
    assert actions.my_open_item_ids(boss, [], 10) == [secret.pk]


def test_home_lists_at_most_ten_items(client_logged_in, user):
    team = make_team()
    team.members.add(user)
    for n in range(13):
        make_action_item(team=team, due=TODAY + dt.timedelta(days=n))
    response = client_logged_in.get("/")
    assert len(response.context["my_actions"]["rows"]) == 10
    assert response.context["my_actions"]["more"]
    assert "the first 10 shown" in response.content.decode()


def test_home_counts_a_team_i_lead_as_mine(client_logged_in, user):
    make_action_item(team=make_team(lead=user, slug="led"), title="Led team item")
    body = client_logged_in.get("/").content.decode()
    assert "Led team item" in body and 'href="/actions/?team=led"' in body


def test_home_action_items_empty_states(client, user):
    client.force_login(user)
    assert "you are in no team yet" in client.get("/").content.decode()
    make_team().members.add(user)
    assert "Nothing open for you or your teams" in client.get("/").content.decode()


# --- Query counts ---------------------------------------------------------------------------------


def build(n, *, team, service, tag, user):
    """`n` incidents of the team, service and tag, each with factors, items and a lesson."""
    for i in range(n):
        incident = make_incident(teams=[team], services=[service], tags=[tag],
                                 started_at=days_ago(i + 1))  # fmt: skip
        make_factor(incident, category="monitoring")
        make_factor(incident, category="change")
        make_action_item(incident, team=team, owner=user, due=TODAY - dt.timedelta(days=i))
        make_action_item(incident, team=team, due=TODAY - dt.timedelta(days=30))
        make_action_item(incident, team=team, status="done")
        make_lesson(incident, tags=[tag])
    # A private one in the mix, so the visibility checks run.
    private_incident(teams=[team], services=[service], tags=[tag])


@pytest.mark.parametrize("url", ["/teams/t/", "/services/s/", "/tags/g/", "/"])
@pytest.mark.parametrize("as_staff", [False, True])
def test_pages_have_a_fixed_number_of_queries(client, url, as_staff, django_assert_max_num_queries):
    """At most 12 queries, and the same number with 2 and with 10 incidents."""
    team, service, tag = make_team(slug="t"), make_service(slug="s"), make_tag(slug="g")
    viewer = make_user(is_staff=as_staff, teams=[team])
    client.force_login(viewer)
    counts = []
    for n in (2, 8):
        build(n, team=team, service=service, tag=tag, user=viewer)
        with django_assert_max_num_queries(12) as captured:
            assert client.get(url).status_code == 200
        counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1]


# --- Architecture -----------------------------------------------------------------------------------


def test_incidents_never_imports_lessons_at_module_level():
    """`lessons` depends on `incidents`, not the reverse (STYLE.md): the pages look the lesson
    model up in the app registry instead."""
    root = Path(__file__).resolve().parents[2] / "incidents"
    offenders = []
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            if any(name == "lessons" or name.startswith("lessons.") for name in names):
                offenders.append(str(path.relative_to(root)))
    assert offenders == []
