"""Every URL pattern, resolved from the URLconf (so a new URL is covered automatically), as
anonymous, outsider, author, reviewer and staff, against a private draft incident.

Guards: anonymous people are sent to sign in; outsiders never read or change a private
write-up — every URL that names it answers 404 exactly as for one that does not exist (a 403
would confirm it exists), lists and exports never mention it, the database stays unchanged;
nobody ever gets a 500.
"""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from incidents.models import ActionItem, Incident, TimelineEntry
from tests.factories import (
    make_action_item,
    make_entry,
    make_factor,
    make_incident,
    make_service,
    make_tag,
    make_team,
    make_user,
)

pytestmark = pytest.mark.django_db

PUBLIC = {"login", "logout", "healthz"}
SKIP_PREFIXES = ("admin/", "static/", "__")
KWARG_GUESSES = {"step": "basics", "token": "not-a-real-token", "format": "json"}


def walk(resolver, prefix=""):
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from walk(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry


def all_patterns():
    return [
        (route, pattern)
        for route, pattern in walk(get_resolver())
        if not route.startswith(SKIP_PREFIXES)
    ]


def build_url(route: str, world) -> str:
    """Fill each <converter:name> with a value that points at the private incident's world."""
    import re

    def value(match):
        converter, name = match.group(1) or "str", match.group(2)
        if name == "slug":
            if route.startswith("teams/"):
                return world["team"].slug
            if route.startswith("services/"):
                return world["service"].slug
            if route.startswith("tags/"):
                return world["tag"].slug
            if route.startswith("lessons/"):
                return "no-such-lesson"
            return world["incident"].slug
        if converter == "int":
            ids = {
                "entry": world["entry"].pk,
                "item": world["item"].pk,
                "factor": world["factor"].pk,
            }
            for key, pk in ids.items():
                if key in name:
                    return str(pk)
            return str(world["item"].pk)
        return KWARG_GUESSES.get(name, "x")

    filled = re.sub(r"<(?:(\w+):)?(\w+)>", value, route)
    return "/" + filled.lstrip("^").rstrip("$")


@pytest.fixture
def world():
    team = make_team()
    author, reviewer, outsider = make_user(), make_user(), make_user(teams=[team])
    staff = make_user(is_staff=True)
    superuser = make_user(is_staff=True, is_superuser=True)
    service, tag = make_service(), make_tag()
    incident = make_incident(
        status=Incident.Status.DRAFT,
        visibility=Incident.Visibility.PEOPLE,
        authors=[author],
        reviewers=[reviewer],
        teams=[team],
        services=[service],
        tags=[tag],
    )
    entry = make_entry(incident)
    factor = make_factor(incident, evidence=[entry])
    item = make_action_item(incident, team=team)
    return {"team": team, "service": service, "tag": tag,
            "author": author, "reviewer": reviewer, "outsider": outsider,
            "staff": staff, "superuser": superuser, "incident": incident, "entry": entry, "factor": factor, "item": item}  # fmt: skip


def snapshot(incident):
    incident.refresh_from_db()
    return (
        incident.version,
        incident.status,
        incident.title,
        TimelineEntry.objects.filter(incident=incident).count(),
        ActionItem.objects.filter(incident=incident).count(),
    )


def test_url_patterns_are_found():
    routes = [route for route, _ in all_patterns()]
    assert "incidents/" in routes and "incidents/<slug:slug>/" in routes


def test_anonymous_is_sent_to_sign_in_everywhere(client, world):
    for route, pattern in all_patterns():
        url = build_url(route, world)
        response = client.get(url)
        if pattern.name in PUBLIC:
            assert response.status_code < 500, url
            continue
        assert response.status_code == 302, (url, response.status_code)
        assert response["Location"].startswith("/accounts/login/"), url


@pytest.mark.parametrize("role", ["outsider", "staff"])
def test_outsider_cannot_read_or_change_a_private_incident(client, world, role):
    client.force_login(world[role])
    before = snapshot(world["incident"])
    incident_routes = [
        (route, pattern) for route, pattern in all_patterns() if "<slug:slug>" in route
        and route.startswith("incidents/")
    ]  # fmt: skip
    assert incident_routes
    for route, _ in incident_routes:
        url = build_url(route, world)
        for method in ("get", "post"):
            response = getattr(client, method)(url, {"title": "hijacked", "version": 1})
            # 405: a POST-only URL refuses a GET before looking anything up.
            assert response.status_code in (404, 405), (method, url, response.status_code)
            assert world["incident"].title.encode() not in response.content, (method, url)
    assert snapshot(world["incident"]) == before


@pytest.mark.parametrize("role", ["outsider", "staff"])
def test_urls_naming_a_private_incident_answer_like_missing_ones(client, world, role):
    """Every URL with the private incident's slug or one of its rows' ids gives the outsider
    the same status as the same URL pointing at nothing."""
    client.force_login(world[role])
    checked = 0
    for route, _ in all_patterns():
        if "<" not in route or route.startswith("teams/"):
            continue
        url = build_url(route, world)
        missing_world = {
            **world,
            "incident": type("Missing", (), {"slug": "no-such-incident"})(),
            "entry": type("Missing", (), {"pk": 999999})(),
            "factor": type("Missing", (), {"pk": 999999})(),
            "item": type("Missing", (), {"pk": 999999})(),
        }
        missing_url = build_url(route, missing_world)
        if missing_url == url:
            continue
        response = client.get(url)
        assert response.status_code == client.get(missing_url).status_code, url
        assert response.status_code in (404, 405), (url, response.status_code)
        checked += 1
    assert checked > 20


@pytest.mark.parametrize("role", ["outsider", "staff"])
def test_lists_and_exports_never_mention_a_private_incident(client, world, role):
    """Lists, search, similar suggestions, metrics, action items and their CSV: the outsider
    sees nothing of the private write-up, not even its action item."""
    incident, item = world["incident"], world["item"]
    word = incident.title.split()[0]
    client.force_login(world[role])
    pages = [
        "/", "/incidents/", f"/incidents/?q={word}", "/actions/", "/actions/export.csv",
        f"/actions/?team={world['team'].slug}", f"/teams/{world['team'].slug}/", "/metrics/",
        "/lessons/", f"/incidents/similar/?title={word}", "/trash/",
    ]  # fmt: skip
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        body = b"".join(response) if response.streaming else response.content
        assert incident.title.encode() not in body, url
        assert item.title.encode() not in body, url
        assert f"/actions/{item.pk}/".encode() not in body, url


@pytest.mark.parametrize("role", ["author", "reviewer", "staff", "superuser", "outsider"])
def test_no_url_gives_a_server_error_for_any_role(client, world, role):
    client.force_login(world[role])
    for route, _ in all_patterns():
        url = build_url(route, world)
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            assert response.status_code < 500, (role, method, url, response.status_code)


@pytest.mark.parametrize("role", ["author", "reviewer", "superuser"])
def test_people_on_the_write_up_can_read_it(client, world, role):
    client.force_login(world[role])
    assert client.get(world["incident"].get_absolute_url()).status_code == 200


def test_staff_not_listed_on_a_private_write_up_are_outsiders_too(client, world):
    """Staff run the tool, but a security or HR write-up is for the people it names."""
    client.force_login(world["staff"])
    incident, item = world["incident"], world["item"]
    assert client.get(incident.get_absolute_url()).status_code == 404
    assert client.get(f"/actions/{item.pk}/").status_code == 404
    for url in ("/incidents/", "/actions/", "/actions/export.csv", "/metrics/", "/trash/"):
        response = client.get(url)
        body = b"".join(response) if response.streaming else response.content
        assert incident.title.encode() not in body, url
        assert item.title.encode() not in body, url


def test_the_admin_hides_private_write_ups_from_staff_who_are_not_superusers(client, world):
    from django.contrib.auth.models import Permission

    staff, incident, item = world["staff"], world["incident"], world["item"]
    staff.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_incident", "view_actionitem"])
    )
    client.force_login(staff)
    listing = client.get("/admin/incidents/incident/")
    assert listing.status_code == 200
    assert incident.title.encode() not in listing.content
    assert client.get(f"/admin/incidents/incident/{incident.pk}/change/").status_code == 404
    assert client.get(f"/admin/incidents/actionitem/{item.pk}/change/").status_code == 404
    items = client.get("/admin/incidents/actionitem/")
    assert item.title.encode() not in items.content

    client.force_login(world["superuser"])
    assert client.get(f"/admin/incidents/incident/{incident.pk}/change/").status_code == 200
    assert incident.title.encode() in client.get("/admin/incidents/incident/").content
