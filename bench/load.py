"""Throughput under load: gunicorn (2 workers with threads) on 127.0.0.1 and a bounded load
generator mixing page reads with autosaves.

    python bench/load.py                      # SQLite, 50 clients for 60 s
    DATABASE_URL=postgres://… python bench/load.py --clients 50 --seconds 60

Uses the 100-incident data set of bench/pages.py (built on first use). Every request goes to
127.0.0.1 only; the run stops by itself after --seconds. Prints requests per second, p50/p99
latency, autosaves accepted and refused as conflicts (409 — the version check working as
designed), and errors: 5xx, connection failures, or "database is locked" — which must be 0.
"""

from __future__ import annotations

import argparse
import http.client
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


def client_loop(port, deadline, slugs, results, lock, seed):
    rng = random.Random(seed)
    session = Session(port)
    try:
        session.login("demo", "demo")
    except Exception as error:
        with lock:
            results["errors"].append(f"login: {error}")
        return
    while time.monotonic() < deadline:
        slug = rng.choice(slugs)
        started = time.perf_counter()
        kind = "read"
        try:
            if rng.random() < 0.2:
                kind = "autosave"
                target = find_autosave(session, slug)
                if target is None:
                    kind = "read"
                    status, body = 200, b""
                else:
                    url, fields = target
                    fields["impact"] = f"Impact text edited under load {rng.random():.6f}"
                    status, body = session.request("POST", url, fields, {"HX-Request": "true"})
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
    args = parser.parse_args()
    if not 1 <= args.clients <= 200 or not 1 <= args.seconds <= 600:
        parser.error("keep the load bounded: 1-200 clients, 1-600 seconds")

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

    port = free_port()
    server = subprocess.Popen(
        [python, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2",
         "--threads", "8", "--log-level", "warning", "--timeout", "60"],
        env=env, cwd=ROOT, start_new_session=True,
    )  # fmt: skip
    try:
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        results = {"latencies": [], "errors": [], "read": 0, "autosave": 0, "conflicts": 0}
        lock = threading.Lock()
        deadline = time.monotonic() + args.seconds
        started = time.monotonic()
        threads = [
            threading.Thread(target=client_loop, args=(port, deadline, slugs, results, lock, n))
            for n in range(args.clients)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=args.seconds + 60)
        elapsed = time.monotonic() - started
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    latencies = sorted(results["latencies"])
    total = len(latencies)
    vendor = "PostgreSQL" if url.startswith("postgres") else "SQLite"
    print(
        f"\nLoad test — {vendor}, gunicorn 2 workers × 8 threads, {args.clients} clients, {args.seconds} s"
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
    print(f"errors        {len(results['errors'])}")
    for error in sorted(set(results["errors"]))[:10]:
        print(f"  {error}")
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
