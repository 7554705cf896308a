"""Autosave across OS processes, as in production: gunicorn with 4 worker processes serving
the database (SQLite as a WAL file, or PostgreSQL with DATABASE_URL), and 4 client processes,
one per author, each sending 200 autosaves of the same field of one write-up as fast as the
server answers, with the version protocol of static/js/write.js:

- each save carries the version the page is at; a 200 gives the new version in
  X-Debrief-Version;
- a 409 carries the current version and the saved text ("Load theirs"): the author's next
  save builds on those.

Every save appends a marker of its own to the text. Afterwards the database must show that no
accepted save was silently overwritten: each accepted save moved the version by exactly one
from the version it was based on, the versions the server handed out are exactly the
increments of the write-up's version, the final text is the text of the last accepted save and
holds every accepted marker once and no refused one. And there were no 5xx responses, no
"database is locked", no connection failures.

Run with -s to see the figures. This module doubles as the client script: the test runs it as
`python tests/test_autosave_processes.py …` in each client process (only the standard library
is imported at the top, so that needs no Django set-up).
"""

from __future__ import annotations

import hashlib
import html
import http.client
import json
import os
import re
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from subprocess import PIPE

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 4
SAVES_EACH = 200
SERVER_WORKERS = 4
FIELD = "impact"
MARKER = re.compile(r"\bp\d+-\d{3}\b")


# --- The client (runs in its own process) -------------------------------------------------------


def _post(port: int, path: str, form: dict, cookies: str, csrf: str):
    body = urllib.parse.urlencode(form)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("POST", path, body=body, headers={
            "Host": "127.0.0.1", "Cookie": cookies, "X-CSRFToken": csrf, "HX-Request": "true",
            "Content-Type": "application/x-www-form-urlencoded",
        })  # fmt: skip
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        connection.close()


def run_client(port, slug, session, csrf, number, saves, version, text, start_at) -> dict:
    """One author's tab: `saves` autosaves, each appending this author's next marker."""
    path = f"/incidents/{slug}/edit/autosave/"
    cookies = f"sessionid={session}; csrftoken={csrf}"
    result = {"accepted": [], "refused": [], "errors": [], "statuses": {}}
    time.sleep(max(0.0, start_at - time.time()))  # all clients start at the same moment
    started = time.perf_counter()
    for i in range(saves):
        marker = f"p{number}-{i:03d}"
        mine = f"{text} {marker}".strip()
        try:
            status, headers, body = _post(
                port, path, {"autosave": FIELD, FIELD: mine, "version": version}, cookies, csrf
            )
        except OSError as error:
            result["errors"].append(f"{marker}: {type(error).__name__}: {error}")
            continue
        result["statuses"][status] = result["statuses"].get(status, 0) + 1
        if "database is locked" in body:
            result["errors"].append(f"{marker}: HTTP {status} database is locked")
        if status == 200:
            new_version = int(headers["X-Debrief-Version"])
            digest = hashlib.sha256(mine.encode()).hexdigest()
            result["accepted"].append([marker, version, new_version, digest])
            version, text = new_version, mine
        elif status == 409:  # "Load theirs": their version and text, then carry on typing
            result["refused"].append(marker)
            version = int(re.search(r'name="overwrite_version" value="(\d+)"', body)[1])
            theirs = re.search(r'<div class="their-text">(.*?)</div>', body, re.S)
            text = html.unescape(theirs[1]).strip() if theirs else ""
        else:
            result["errors"].append(f"{marker}: HTTP {status} {body[:200]!r}")
    result["seconds"] = time.perf_counter() - started
    return result


if __name__ == "__main__":
    port, slug, session, csrf, number, saves, version, start_at = sys.argv[1:9]
    print(json.dumps(run_client(int(port), slug, session, csrf, int(number), int(saves),
                                int(version), "", float(start_at))))  # fmt: skip
    sys.exit(0)


# --- The test ------------------------------------------------------------------------------------

import pytest  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _database_url(tmp_path) -> str:
    """The server's DATABASE_URL: a WAL file copied from the test database (SQLite), or the
    test database itself (PostgreSQL)."""
    from django.db import connection

    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        path = tmp_path / "processes.sqlite3"
        connection.ensure_connection()
        target = sqlite3.connect(path)
        connection.connection.backup(target)
        target.close()
        return f"sqlite:///{path}"
    user = urllib.parse.quote(settings["USER"] or "", safe="")
    if settings["PASSWORD"]:
        user += ":" + urllib.parse.quote(settings["PASSWORD"], safe="")
    return f"postgres://{user}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}/{settings['NAME']}"


def _wait_until_up(port: int, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"gunicorn exited:\n{log.read_text()[-3000:]}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/healthz", headers={"Host": "127.0.0.1"})
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"gunicorn did not answer /healthz:\n{log.read_text()[-3000:]}")


def _final_state(database_url: str, incident_id: int) -> tuple[int, str]:
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:
            return db.execute(
                f"SELECT version, {FIELD} FROM incidents_incident WHERE id = ?", (incident_id,)
            ).fetchone()
    from incidents.models import Incident

    row = Incident.objects.values_list("version", FIELD).get(pk=incident_id)
    return row[0], row[1]


def test_four_processes_autosaving_lose_no_update(tmp_path):
    """4 client processes, 200 autosaves each, through a 4-process gunicorn: 0 undetected
    lost updates, 0 "database is locked", 0 5xx."""
    from django.conf import settings
    from django.db import connection
    from django.test import Client

    from incidents.models import Incident
    from tests.factories import make_incident, make_user

    authors = [make_user(username=f"author{n}", password=None) for n in range(CLIENTS)]
    incident = make_incident(status=Incident.Status.DRAFT, authors=authors, **{FIELD: ""})
    sessions = []
    for author in authors:
        client = Client()
        client.force_login(author)
        sessions.append(client.cookies["sessionid"].value)
    initial_version = incident.version
    database_url = _database_url(tmp_path)

    port = _free_port()
    log = tmp_path / "gunicorn.log"
    env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_DEBUG": "0",
           "DJANGO_SECRET_KEY": settings.SECRET_KEY, "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
           "DJANGO_SECURE_SSL_REDIRECT": "0", "DJANGO_SETTINGS_MODULE": "config.settings"}  # fmt: skip
    with log.open("w") as log_file:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}",
             "--workers", str(SERVER_WORKERS), "--preload", "--timeout", "60",
             "--graceful-timeout", "5"],
            cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        _wait_until_up(port, server, log)
        start_at = time.time() + 1.5  # the clients' Python start-up is not part of the race
        args = [str(port), incident.slug, "", secrets.token_hex(16), "", str(SAVES_EACH),
                str(initial_version), str(start_at)]  # fmt: skip
        clients = []
        for n in range(CLIENTS):
            args[2], args[4] = sessions[n], str(n)
            command = [sys.executable, __file__, *args]
            clients.append(subprocess.Popen(command, stdout=PIPE, stderr=PIPE, text=True))
        results = []
        for process in clients:
            out, err = process.communicate(timeout=300)
            assert process.returncode == 0, err
            results.append(json.loads(out))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    final_version, final_text = _final_state(database_url, incident.pk)
    accepted = [save for r in results for save in r["accepted"]]
    refused = [marker for r in results for marker in r["refused"]]
    errors = [error for r in results for error in r["errors"]]
    statuses = {}
    for r in results:
        for status, count in r["statuses"].items():
            statuses[int(status)] = statuses.get(int(status), 0) + count
    server_log = log.read_text()
    locked = server_log.count("database is locked") + sum("locked" in e for e in errors)
    print(
        f"\n[{connection.vendor}] {CLIENTS} processes × {SAVES_EACH} autosaves via gunicorn "
        f"({SERVER_WORKERS} workers): {len(accepted)} accepted, {len(refused)} refused with "
        f"409, {len(errors)} errors, {sum(n for s, n in statuses.items() if s >= 500)} 5xx, "
        f"{locked} 'database is locked'; slowest client {max(r['seconds'] for r in results):.1f} s"
    )

    assert errors == []
    assert locked == 0 and "Traceback" not in server_log
    assert set(statuses) <= {200, 409}
    assert len(accepted) + len(refused) == CLIENTS * SAVES_EACH
    # Every accepted save moved the version by exactly one from the version it was based on…
    assert all(new == based_on + 1 for _marker, based_on, new, _digest in accepted)
    # …the versions handed out are exactly the write-up's version increments, each once…
    assert sorted(new for _m, _b, new, _d in accepted) == list(
        range(initial_version + 1, final_version + 1)
    )
    # …and the saved text is the last accepted save's, with every accepted marker in it once
    # and none of the refused ones.
    last = max(accepted, key=lambda save: save[2])
    assert hashlib.sha256(final_text.encode()).hexdigest() == last[3]
    markers = MARKER.findall(final_text)
    assert sorted(markers) == sorted(marker for marker, *_ in accepted)
    assert not set(markers) & set(refused)
