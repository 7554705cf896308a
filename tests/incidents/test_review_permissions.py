"""Permissions over HTTP: the role-by-action matrix (anonymous, outsider, author, reviewer,
staff), and a walk over every URL pattern proving a private write-up does not leak."""

import datetime as dt

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from incidents import undo
from incidents.models import Incident
from incidents.review import add_comment, schedule_meeting
from tests import factories
from tests.factories import make_action_item, make_entry, make_factor, make_incident, make_team

pytestmark = pytest.mark.django_db


def make_user(**overrides):
    """A user without a password: these tests sign in with force_login, and skipping the
    password hash makes them several times faster."""
    return factories.make_user(**({"password": None} | overrides))


ROLES = ("anonymous", "outsider", "author", "reviewer", "staff")


def client_for(role, people):
    client = Client()
    if role != "anonymous":
        client.force_login(people[role])
    return client


def setup_case(status, visibility="everyone"):
    people = {
        "author": make_user(),
        "reviewer": make_user(),
        "staff": make_user(is_staff=True),
        "outsider": make_user(),
    }
    incident = make_incident(status=status, visibility=visibility, authors=[people["author"]],
                             reviewers=[people["reviewer"]])  # fmt: skip
    return people, incident


def do(action, client, incident, people):
    slug = incident.slug
    if action == "read":
        return client.get(reverse("review_page", args=[slug]))
    if action == "history":
        return client.get(reverse("incident_history", args=[slug]))
    if action == "comment":
        return client.post(reverse("review_comments", args=[slug]), {"body": "A question"})
    if action == "resolve":
        comment = add_comment(incident=incident, by=people["reviewer"], body="x")
        return client.post(reverse("review_comment_action", args=[slug, comment.pk, "resolve"]))
    if action in ("submit", "request-changes", "approve", "reopen"):
        return client.post(
            reverse("review_move", args=[slug, action]), {"note": "n", "reason": "r"}
        )
    if action == "add_reviewer":
        newcomer = make_user()
        return client.post(reverse("review_people", args=[slug]),
                           {"role": "reviewer", "username": newcomer.username})  # fmt: skip
    if action == "readers":
        return client.post(reverse("review_readers", args=[slug]), {"visibility": "everyone"})
    if action == "meeting":
        when = (timezone.localtime() + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
        return client.post(reverse("review_meeting", args=[slug]),
                           {"starts_at": when, "duration": 60, "facilitator": people["author"].pk})  # fmt: skip
    if action == "ics":
        schedule_meeting(incident=incident, by=people["author"], facilitator=people["author"],
                         starts_at=timezone.now() + dt.timedelta(days=1))  # fmt: skip
        return client.get(reverse("review_meeting_ics", args=[slug]))
    if action == "delete":
        return client.post(reverse("incident_delete", args=[slug]), {"confirm_slug": slug})
    if action == "restore":
        entry = undo.soft_delete(make_entry(incident), by=people["author"])
        return client.post(reverse("undo", args=[entry.token]))
    raise AssertionError(action)


# (action, incident status): expected status per role. "login" = redirect to sign in;
# 302 otherwise = done, redirected back. 404: may not read it; 403: may read, may not act.
MATRIX = {
    ("read", "in_review"): ("login", 404, 200, 200, 200),
    ("read", "published"): ("login", 200, 200, 200, 200),
    ("history", "draft"): ("login", 404, 200, 200, 200),
    ("history", "published"): ("login", 200, 200, 200, 200),
    ("comment", "in_review"): ("login", 404, 302, 302, 302),
    ("comment", "published"): ("login", 403, 302, 302, 302),
    ("resolve", "in_review"): ("login", 404, 302, 302, 302),
    ("submit", "draft"): ("login", 404, 302, 403, 302),
    ("request-changes", "in_review"): ("login", 404, 403, 302, 302),
    ("approve", "in_review"): ("login", 404, 403, 302, 302),
    ("reopen", "published"): ("login", 403, 302, 302, 302),
    ("add_reviewer", "published"): ("login", 403, 302, 403, 302),
    ("readers", "published"): ("login", 403, 302, 403, 302),
    ("meeting", "in_review"): ("login", 404, 302, 302, 302),
    ("ics", "in_review"): ("login", 404, 200, 200, 200),
    ("ics", "published"): ("login", 200, 200, 200, 200),
    ("delete", "published"): ("login", 403, 302, 403, 302),
    ("restore", "published"): ("login", 404, 302, 404, 302),
}


@pytest.mark.parametrize(("action", "status"), list(MATRIX))
@pytest.mark.parametrize("role_index", range(len(ROLES)), ids=ROLES)
def test_role_action_matrix(action, status, role_index):
    """Each cell: what one role gets for one action; the server decides, not hidden buttons."""
    people, incident = setup_case(status)
    role = ROLES[role_index]
    response = do(action, client_for(role, people), incident, people)
    expected = MATRIX[(action, status)][role_index]
    if expected == "login":
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")
    else:
        assert response.status_code == expected, response.content[:300]


def test_refused_actions_change_nothing():
    people, incident = setup_case("in_review")
    do("approve", client_for("author", people), incident, people)
    do("delete", client_for("reviewer", people), incident, people)
    assert Incident.objects.get(pk=incident.pk).status == "in_review"


# --- Private write-ups never leak ---------------------------------------------------------------


def private_world():
    """A published write-up only one named reader may see, with every kind of child."""
    team = make_team(slug="secops", name="Secops")
    author, reader, outsider = make_user(), make_user(), make_user(teams=[team])
    incident = make_incident(status="published", visibility="people", authors=[author],
                             teams=[team], title="Zebra-secret credential leak")  # fmt: skip
    incident.visible_users.add(reader)
    entry = make_entry(incident, text="Zebra-secret token rotated")
    make_factor(incident, evidence=[entry])
    make_action_item(incident, team=team, title="Zebra-secret rotation runbook")
    add_comment(incident=incident, by=author, body="Zebra-secret review note")
    return incident, entry, author, reader, outsider


def slug_patterns():
    """(name, converters) of every URL pattern that takes an incident slug."""
    found = []

    def walk(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(
                    pattern.url_patterns,
                    prefix + (pattern.namespace + ":" if pattern.namespace else ""),
                )
            elif isinstance(pattern, URLPattern) and pattern.name:
                converters = pattern.pattern.converters
                route = str(pattern.pattern)
                if "slug" in converters and route.startswith(("incidents/", "lessons/from/")):
                    found.append((prefix + pattern.name, converters))

    walk(get_resolver().url_patterns)
    return found


FILLERS = {"move": "submit", "action": "resolve", "role": "reviewer", "step": "impact",
           "format": "json"}  # fmt: skip


def build_url(name, converters, slug, some_pk):
    kwargs = {}
    for key, converter in converters.items():
        if key == "slug":
            kwargs[key] = slug
        elif type(converter).__name__ == "IntConverter":
            kwargs[key] = some_pk
        else:
            kwargs[key] = FILLERS.get(key, "x")
    return reverse(name, kwargs=kwargs)


def test_every_incident_url_is_404_or_refused_for_an_outsider_and_reveals_nothing():
    """Every URL that names the incident, GET and POST: no 2xx, and never its title."""
    incident, entry, _author, _reader, outsider = private_world()
    client = Client()
    client.force_login(outsider)
    patterns = slug_patterns()
    assert len(patterns) >= 10
    own = {name for name, _ in patterns if name.startswith("review_") or name in
           ("incident_history", "incident_delete")}  # fmt: skip
    for name, converters in patterns:
        url = build_url(name, converters, incident.slug, entry.pk)
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            assert response.status_code in (403, 404, 405), (method, url, response.status_code)
            assert b"Zebra-secret" not in response.content, (method, url)
            if name in own and response.status_code != 405:
                assert response.status_code == 404, (method, url)  # not even acknowledged
    assert Incident.objects.get(pk=incident.pk).title == "Zebra-secret credential leak"


@pytest.mark.parametrize(
    "url",
    ["/", "/incidents/", "/incidents/?q=credential",
     "/actions/", "/actions/?team=secops", "/actions/export.csv", "/teams/secops/", "/metrics/",
     "/lessons/", "/trash/", "/incidents/similar/?q=credential"],
)  # fmt: skip
def test_lists_do_not_show_a_private_write_up_to_an_outsider(url):
    _incident, _entry, _author, _reader, outsider = private_world()
    client = Client()
    client.force_login(outsider)
    response = client.get(url)
    assert response.status_code in (200, 404)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert b"Zebra-secret" not in body


def test_the_named_reader_and_the_author_do_see_it():
    incident, _entry, author, reader, _outsider = private_world()
    for person in (reader, author):
        client = Client()
        client.force_login(person)
        assert client.get(reverse("review_page", args=[incident.slug])).status_code == 200
        assert (
            b"Zebra-secret" in client.get(reverse("incident_history", args=[incident.slug])).content
        )
