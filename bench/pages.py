"""Server time of Debrief's main pages at 100 and 10,000 incidents.

    python bench/pages.py                       # SQLite, data sets of 100 and 10,000 incidents
    python bench/pages.py --sizes 100           # only the small set
    DATABASE_URL=postgres://… python bench/pages.py   # PostgreSQL (databases <name>_100, <name>_10000)

Each data set is built once with `seed_demo` into its own database (kept in var/bench/ for
SQLite) and reused on the next run. Pages are requested through Django's test client with
production settings (debug off), so the figures are server time without network or browser:
warm-up, then N timed requests per page; p50, p95 and the number of SQL queries are printed,
with the target each page must meet at 10,000 incidents.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# p95 targets at 10,000 incidents, in milliseconds (issue: "Fast at 10,000 incidents").
TARGETS = {
    "home": 40, "list": 25, "list last page": 25, "search rare word": 50, "detail (large)": 25,
    "actions": 30, "actions overdue": 30, "lessons": 30, "metrics": 80, "healthz": 5,
}  # fmt: skip
MAX_QUERIES = 12


def database_url_for(size: int) -> str:
    base = os.environ.get("DATABASE_URL", "")
    if base.startswith("postgres"):
        head, _, name = base.rpartition("/")
        return f"{head}/{name}_{size}"
    path = ROOT / "var" / "bench" / f"debrief-{size}.sqlite3"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def worker(size: int, repeat: int) -> dict:
    """Runs inside a child process whose DATABASE_URL points at the data set."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core import signals
    from django.core.management import call_command
    from django.db import close_old_connections, connection
    from django.db.models import Count
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from incidents.models import Incident

    call_command("migrate", verbosity=0, interactive=False)
    call_command("collectstatic", verbosity=0, interactive=False)
    existing = Incident.objects.count()
    if existing < size:
        started = time.perf_counter()
        call_command("seed_demo", incidents=size - existing, seed=42, verbosity=0)
        print(f"  seeded {size - existing} incidents in {time.perf_counter() - started:.1f} s",
              file=sys.stderr)  # fmt: skip
        if connection.vendor == "postgresql":
            # Fresh statistics, as autovacuum would gather them soon after a bulk load.
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
    # An engineer, not staff: their pages test private-incident visibility on every query.
    # The one who wrote most write-ups, so home, drafts and reviews are as full as they get.
    user = (
        get_user_model()
        .objects.filter(is_staff=False, is_superuser=False)
        .annotate(written=Count("authored_incidents"))
        .order_by("-written", "username")
        .first()
    )
    rare = Incident.objects.visible_to(user).published().order_by("pk").first()
    if "zebrafish" not in rare.title:
        rare.title = f"{rare.title} zebrafish"
        rare.save()
    # The largest write-up this person may read (the "25 timeline entries, 6 items").
    large = (
        Incident.objects.visible_to(user).published()
        .annotate(entries=Count("timeline_entries", distinct=True),
                  actions=Count("action_items", distinct=True))
        .order_by("-entries", "-actions", "pk")
        .first()
    )  # fmt: skip
    client = Client()
    client.force_login(user)
    from incidents.viewutils import PAGE_SIZE

    last_page = max(1, -(-Incident.objects.visible_to(user).count() // PAGE_SIZE))
    pages = {
        "home": "/",
        "list": "/incidents/",
        "list last page": f"/incidents/?page={last_page}",
        "search rare word": "/incidents/?q=zebrafish",
        "detail (large)": large.get_absolute_url(),
        "actions": "/actions/",
        "actions overdue": "/actions/?overdue=1",
        "lessons": "/lessons/",
        "metrics": "/metrics/",
        "healthz": "/healthz",
    }
    results = {}
    for name, url in pages.items():
        for _ in range(3):
            response = client.get(url, secure=True)
        assert response.status_code == 200, (name, url, response.status_code)
        # Keep one connection open while counting: a request may close and reopen it otherwise,
        # which resets the query log.
        signals.request_started.disconnect(close_old_connections)
        signals.request_finished.disconnect(close_old_connections)
        connection.queries_log.clear()
        with CaptureQueriesContext(connection) as queries:
            client.get(url, secure=True)
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
        # Read now: the next request clears the log.
        results[name] = {"url": url, "queries": len(queries.captured_queries), "times": []}
    # Round-robin over the pages, so a slow spell of a shared machine lands on all of them
    # alike instead of on whichever page happened to be measured then.
    for _ in range(repeat):
        for name, url in pages.items():
            started = time.perf_counter()
            client.get(url, secure=True)
            results[name]["times"].append((time.perf_counter() - started) * 1000)
    for page in results.values():
        times = sorted(page.pop("times"))
        page["p50"] = statistics.median(times)
        page["p95"] = times[min(len(times) - 1, round(0.95 * len(times)) - 1)]
    return {"size": size, "vendor": connection.vendor, "user": user.username, "pages": results}


def run_child(size: int, repeat: int) -> dict:
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for(size),
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY", "bench-" + "k" * 50),
        "DJANGO_ALLOWED_HOSTS": "testserver,localhost,127.0.0.1",
    }
    if env["DATABASE_URL"].startswith("postgres"):
        ensure_postgres_database(env["DATABASE_URL"])
    output = subprocess.run(
        [sys.executable, __file__, "--child", str(size), "--repeat", str(repeat)],
        env=env, cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    return json.loads(output.stdout.strip().splitlines()[-1])


def ensure_postgres_database(url: str) -> None:
    import psycopg

    head, _, name = url.rpartition("/")
    with psycopg.connect(f"{head}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100,10000")
    parser.add_argument("--repeat", type=int, default=60)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(worker(args.child, args.repeat)))
        return 0

    sizes = [int(s) for s in args.sizes.split(",")]
    runs = [run_child(size, args.repeat) for size in sizes]
    if args.json:
        print(json.dumps(runs, indent=2))
    print(f"\nDebrief page benchmark — {runs[0]['vendor']} — {machine()}")
    print(
        f"signed in as {runs[-1]['user']} (an engineer, not staff); {args.repeat} requests per page"
    )
    header = f"{'page':<18}" + "".join(
        f"{'p50 @' + str(r['size']):>12}{'p95 @' + str(r['size']):>12}{'queries':>9}" for r in runs
    )
    print(header + f"{'target p95':>12}  verdict")
    failures = 0
    for name in runs[0]["pages"]:
        row = f"{name:<18}"
        for run in runs:
            page = run["pages"][name]
            row += f"{page['p50']:>10.1f}ms{page['p95']:>10.1f}ms{page['queries']:>9}"
        big, small = runs[-1]["pages"][name], runs[0]["pages"][name]
        problems = []
        if big["p95"] > TARGETS[name]:
            problems.append(f"p95 over {TARGETS[name]} ms")
        if big["queries"] > MAX_QUERIES:
            problems.append(f"> {MAX_QUERIES} queries")
        if len(runs) > 1:
            if big["queries"] != small["queries"]:
                problems.append("queries grow with data")
            if big["p95"] > 2 * max(small["p95"], 1.0):
                problems.append("p95 more than 2x the small set")
        failures += bool(problems)
        row += f"{TARGETS[name]:>10} ms  {'ok' if not problems else '; '.join(problems)}"
        print(row)
    print(f"\n{len(TARGETS) - failures} of {len(TARGETS)} pages meet every target.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
