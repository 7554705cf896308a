"""Throughput under load: gunicorn (2 workers with threads) on 127.0.0.1 and a bounded load
generator mixing page reads with autosaves.

    python bench/load.py                      # SQLite, 50 clients for 60 s
    DATABASE_URL=postgres://… python bench/load.py --clients 50 --seconds 60
    DATABASE_URL=postgres://… python bench/load.py --instances 2   # two app servers, one database

Uses the 100-incident data set of bench/pages.py (built on first use). Every request goes to
127.0.0.1 only; the run stops by itself after --seconds. Prints requests per second, p50/p99
latency, autosaves accepted and refused as conflicts (409 — the version check working as
designed), and errors: 5xx, connection failures, or "database is locked" — which must be 0.

Lost edits: every accepted autosave names the version it was based on; two accepted saves from
the same version of an incident would mean one overwrote the other unseen. After the run each
incident's text must be that of its last accepted save, and its version must have risen by
exactly the number of accepted saves. The resident memory of each gunicorn worker is read
from /proc after the run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from pages import database_url_for, ensure_postgres_database  # noqa: E402

READS = ["/", "/incidents/", "/incidents/?page=2", "/actions/", "/actions/?overdue=1",
         "/lessons/", "/metrics/", "/healthz", "{detail}", "{detail}", "/incidents/?q=certificate"]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Session:
    """One simulated person: a keep-alive connection, cookies, and the CSRF token."""

    def __init__(self, port: int):
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict | None = None, headers=None):
        body = urllib.parse.urlencode(form, doseq=True) if form is not None else None
        all_headers = {
            "Host": "127.0.0.1",
            "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()),
        }
        if body is not None:
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
            all_headers["Referer"] = f"http://127.0.0.1:{self.port}{path}"
            all_headers["X-CSRFToken"] = self.cookies.get("csrftoken", "")
        all_headers.update(headers or {})
        for attempt in range(2):
            try:
                self.connection.request(method, path, body=body, headers=all_headers)
                response = self.connection.getresponse()
                data = response.read()
                break
            except (http.client.HTTPException, OSError):
                self.connection.close()
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                if attempt:
                    raise
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
        return response.status, data

    def login(self, username: str, password: str) -> None:
        self.request("GET", "/accounts/login/")
        status, _ = self.request("POST", "/accounts/login/", {
            "username": username, "password": password,
            "csrfmiddlewaretoken": self.cookies.get("csrftoken", "")})  # fmt: skip
        if status != 302:
            raise RuntimeError(f"login failed with {status}")


def find_autosave(session: Session, slug: str):
    """The autosave form of the guided write-up's impact step: (url, fields, text field name)."""
    status, body = session.request("GET", f"/incidents/{slug}/edit/impact/")
    if status != 200:
        return None
    html = body.decode()
    match = re.search(r'hx-post="([^"]+)"[^>]*hx-trigger="[^"]*(?:keyup|input)', html) or re.search(
        r'<form[^>]*method="post"[^>]*action="([^"]+)"', html
    )
    if not match:
        return None
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))
    return match.group(1).replace("&amp;", "&"), fields


def client_loop(ports, deadline, slugs, results, lock, seed, contested, cookies):
    rng = random.Random(seed)
    # Clients are spread over the app servers. They share one signed-in session (stored in
    # the database, so every server knows it): fifty password checks would otherwise take
    # the first seconds of the run.
    session = Session(ports[seed % len(ports)])
    session.cookies = dict(cookies)
    while time.monotonic() < deadline:
        slug = rng.choice(slugs)
        started = time.perf_counter()
        kind = "read"
        try:
            if rng.random() < 0.2:
                kind = "autosave"
                slug = rng.choice(contested)
                target = find_autosave(session, slug)
                if target is None:
                    kind = "read"
                    status, body = 200, b""
                else:
                    url, fields = target
                    text = f"Impact text edited under load {seed}-{rng.random():.9f}"
                    fields["impact"] = text
                    fields["autosave"] = "impact"
                    status, body = session.request("POST", url, fields, {"HX-Request": "true"})
                    if status == 200:
                        with lock:
                            results["accepted"].setdefault(slug, []).append(
                                (int(fields.get("version", -1)), text)
                            )
            else:
                path = rng.choice(READS).format(detail=f"/incidents/{slug}/")
                status, body = session.request("GET", path)
        except Exception as error:
            with lock:
                results["errors"].append(f"{kind}: {type(error).__name__}: {error}")
            continue
        elapsed = (time.perf_counter() - started) * 1000
        with lock:
            results["latencies"].append(elapsed)
            results[kind] += 1
            if status == 409:
                results["conflicts"] += 1
            if status >= 500 or b"database is locked" in body:
                results["errors"].append(f"{kind}: HTTP {status}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--instances", type=int, default=1, help="gunicorn servers (ports)")
    args = parser.parse_args()
    if not 1 <= args.clients <= 200 or not 1 <= args.seconds <= 600:
        parser.error("keep the load bounded: 1-200 clients, 1-600 seconds")
    if not 1 <= args.instances <= 4:
        parser.error("1-4 instances")

    url = database_url_for(args.size)
    if url.startswith("postgres"):
        ensure_postgres_database(url)
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_DEBUG": "0",
           "DJANGO_SECRET_KEY": "load-" + "k" * 50, "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
           "DJANGO_SECURE_SSL_REDIRECT": "0"}  # fmt: skip
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "-v0"], env=env, cwd=ROOT, check=True)
    subprocess.run(
        [python, "manage.py", "collectstatic", "--no-input", "-v0"], env=env, cwd=ROOT, check=True
    )
    subprocess.run([python, "-c", (
        "import django,os;os.environ['DJANGO_SETTINGS_MODULE']='config.settings';django.setup();"
        "from django.core.management import call_command;from incidents.models import Incident;"
        f"n=Incident.objects.count();call_command('seed_demo',incidents=max(0,{args.size}-n),seed=42,verbosity=0);"
        "from django.contrib.auth import get_user_model;u=get_user_model().objects.get(username='demo');"
        "u.set_password('demo');u.is_staff=True;u.save()")], env=env, cwd=ROOT, check=True)  # fmt: skip
    slugs = subprocess.run([python, "-c", (
        "import django,os;os.environ['DJANGO_SETTINGS_MODULE']='config.settings';django.setup();"
        "from incidents.models import Incident;"
        "print('\\n'.join(Incident.objects.order_by('-started_at').values_list('slug',flat=True)[:40]))")],
        env=env, cwd=ROOT, check=True, capture_output=True, text=True).stdout.split()  # fmt: skip

    # Autosaves go to the 8 most recent incidents so that clients really collide.
    contested = slugs[:8]
    before = incident_state(python, env, contested)
    ports = [free_port() for _ in range(args.instances)]
    command = [python, "-m", "gunicorn", "--config", "config/gunicorn.py", "config.wsgi",
               "--log-level", "warning", "--timeout", "60"]  # fmt: skip
    servers = [
        subprocess.Popen(
            command,
            env={**env, "DEBRIEF_BIND": f"127.0.0.1:{port}", "DEBRIEF_ACCESS_LOG": ""},
            cwd=ROOT,
            start_new_session=True,
        )
        for port in ports
    ]
    memory = {}
    try:
        for port in ports:
            for _ in range(100):
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        break
                except OSError:
                    time.sleep(0.1)
        results = {"latencies": [], "errors": [], "read": 0, "autosave": 0, "conflicts": 0,
                   "accepted": {}}  # fmt: skip
        lock = threading.Lock()
        signed_in = Session(ports[0])
        signed_in.login("demo", "demo")
        deadline = time.monotonic() + args.seconds
        started = time.monotonic()
        threads = [
            threading.Thread(
                target=client_loop,
                args=(ports, deadline, slugs, results, lock, n, contested, signed_in.cookies),
            )
            for n in range(args.clients)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=args.seconds + 60)
        elapsed = time.monotonic() - started
        for server in servers:
            memory.update(worker_memory(server.pid))
    finally:
        for server in servers:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    lost = lost_edits(before, incident_state(python, env, contested), results["accepted"])

    latencies = sorted(results["latencies"])
    total = len(latencies)
    vendor = "PostgreSQL" if url.startswith("postgres") else "SQLite"
    print(
        f"\nLoad test — {vendor}, {args.instances} × gunicorn (2 workers × 8 threads), "
        f"{args.clients} clients, {args.seconds} s"
    )
    print(f"requests      {total} ({total / elapsed:.0f} per second)")
    if latencies:
        print(
            f"latency       p50 {statistics.median(latencies):.1f} ms   p99 {latencies[int(0.99 * (total - 1))]:.1f} ms"
        )
    print(f"reads         {results['read']}")
    print(
        f"autosaves     {results['autosave']} ({results['conflicts']} refused as version conflicts, 409)"
    )
    accepted = sum(len(saves) for saves in results["accepted"].values())
    print(
        f"lost edits    {len(lost)} (of {accepted} accepted autosaves on {len(contested)} incidents)"
    )
    for problem in lost[:10]:
        print(f"  {problem}")
    if memory:
        largest = max(memory.values())
        print(
            f"worker RSS    {', '.join(f'{mb:.0f}' for mb in sorted(memory.values()))} MB "
            f"(largest {largest:.0f} MB; limit 150 MB)"
        )
    print(f"errors        {len(results['errors'])}")
    for error in sorted(set(results["errors"]))[:10]:
        print(f"  {error}")
    return 1 if results["errors"] or lost else 0


def incident_state(python, env, slugs) -> dict:
    """{slug: (version, impact)} read straight from the database."""
    output = subprocess.run([python, "-c", (
        "import django,os,json,sys;os.environ['DJANGO_SETTINGS_MODULE']='config.settings';"
        "django.setup();from incidents.models import Incident;"
        "slugs=json.loads(sys.argv[1]);"
        "print(json.dumps({i.slug:[i.version,i.impact] for i in Incident.objects.filter(slug__in=slugs)}))"),
        json.dumps(slugs)], env=env, cwd=ROOT, check=True, capture_output=True, text=True)  # fmt: skip
    return {slug: tuple(state) for slug, state in json.loads(output.stdout).items()}


def lost_edits(before: dict, after: dict, accepted: dict) -> list[str]:
    problems = []
    for slug, saves in accepted.items():
        versions = [version for version, _ in saves]
        if len(set(versions)) != len(versions):
            problems.append(f"{slug}: two saves accepted from the same version")
        rise = after[slug][0] - before[slug][0]
        if rise != len(saves):
            problems.append(f"{slug}: version rose by {rise}, {len(saves)} saves accepted")
        last_text = max(saves)[1]
        if after[slug][1] != last_text:
            problems.append(f"{slug}: stored text is not the last accepted save")
    return problems


def worker_memory(master_pid: int) -> dict:
    """Resident memory in MB of each worker of a gunicorn master (Linux /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("PPid", "").strip() == str(master_pid) and "VmRSS" in fields:
            found[int(entry.name)] = int(fields["VmRSS"].split()[0]) / 1024
    return found


if __name__ == "__main__":
    sys.exit(main())
