"""Server time of Debrief's main pages at 100 and 10,000 incidents.

    python bench/pages.py                       # SQLite, data sets of 100 and 10,000 incidents
    python bench/pages.py --sizes 100           # only the small set
    DATABASE_URL=postgres://… python bench/pages.py   # PostgreSQL (databases <name>_100, <name>_10000)

Each data set is built once with `seed_demo` into its own database (kept in var/bench/ for
SQLite) and reused on the next run. Pages are requested through Django's test client with
production settings (debug off), so the figures are server time without network or browser:
warm-up, then several runs of N timed requests per page, round-robin; p50, p95 and the number
of SQL queries are printed, with the target each page must meet at 10,000 incidents.

A shared VM has slow spells of seconds to minutes in which everything, the same code
included, runs up to 2.5x slower: the neighbours are busy. Each figure is the median over the
runs (each run's own p50 and p95), with the spread of the runs' p95 printed beside it. The
machine's pace (a fixed template and a fixed query) is probed between the rounds of every
run; a run whose pace is over 1.25x the quickest seen is set aside and measured again, at
most 6 times, after waiting up to 30 s for a quiet spell. How many were set aside is printed.
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


def worker(size: int, repeat: int, runs: int, quickest: float | None = None) -> dict:
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
        results[name] = {"url": url, "queries": len(queries.captured_queries)}
    # The quickest pace seen so far stands for this machine when nobody else is using it.
    probe = PaceProbe()
    quickest = min([probe.pace() for _ in range(5)] + ([quickest] if quickest else []))
    accepted, set_aside = [], 0  # accepted: (pace, {page: sorted times})
    while len(accepted) < runs:
        wait_for_quiet(probe, quickest)
        times = {name: [] for name in pages}
        during = []
        # Round-robin over the pages, so a slow spell of a shared machine lands on all of them
        # alike instead of on whichever page happened to be measured then; the probe between
        # rounds tells how quick the machine was all through the run.
        for _ in range(repeat):
            for name, url in pages.items():
                started = time.perf_counter()
                client.get(url, secure=True)
                times[name].append((time.perf_counter() - started) * 1000)
            during.append(probe.once())
        pace = percentile90(during)
        quickest = min(quickest, pace)
        accepted.append((pace, {name: sorted(t) for name, t in times.items()}))
        # A run taken before a quicker pace was seen may have been a slow spell all along.
        slow = [run for run in accepted if run[0] > QUIET * quickest]
        for run in slow[: MAX_SET_ASIDE - set_aside]:
            accepted.remove(run)
            set_aside += 1
    paces = [pace for pace, _times in accepted]
    run_p50s = {name: [statistics.median(t[name]) for _p, t in accepted] for name in pages}
    run_p95s = {
        name: [t[name][min(repeat - 1, round(0.95 * repeat) - 1)] for _p, t in accepted]
        for name in pages
    }
    for name, page in results.items():
        page["p50"] = statistics.median(run_p50s[name])
        page["p95"] = statistics.median(run_p95s[name])
        page["p95_runs"] = sorted(run_p95s[name])
    return {
        "size": size,
        "vendor": connection.vendor,
        "user": user.username,
        "pages": results,
        "pace": {"quickest": quickest, "runs": paces, "set_aside": set_aside},
    }


# A run counts when the machine's pace before and after it is within this factor of the
# quickest pace seen; a run that meets a slow spell is set aside and measured again, at most
# MAX_SET_ASIDE times, and a wait for a quiet spell lasts at most QUIET_WAIT seconds.
QUIET, MAX_SET_ASIDE, QUIET_WAIT = 1.25, 6, 30


def wait_for_quiet(probe, quickest: float) -> None:
    """Returns once the pace is back within QUIET of the quickest, or after QUIET_WAIT s."""
    deadline = time.monotonic() + QUIET_WAIT
    while probe.pace() > QUIET * quickest and time.monotonic() < deadline:
        time.sleep(3)


def percentile90(values: list[float]) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(0.9 * len(values)) - 1)]


class PaceProbe:
    """How quick this machine is now: milliseconds for a fixed piece of work, a 50-row Django
    template with a date per row plus a query that counts to 3,000 in the database (PostgreSQL
    runs in another process, perhaps on the other core). This VM's speed wavers from one
    tenth of a second to the next, which is what makes a p95 wander, so a pace is the 90th
    percentile of several probes, not their median."""

    COUNTING = (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000) "
        "SELECT COUNT(*) FROM c"
    )

    def __init__(self):
        import datetime as dt

        from django.template import Context, Template

        self.template = Template(
            '{% for row in rows %}<li><a href="/x/{{ row.slug }}">{{ row.title }}</a> '
            '{{ row.day|date:"j M Y" }}</li>{% endfor %}'
        )
        self.context = Context(
            {"rows": [{"slug": f"s{n}", "title": f"Row {n}", "day": dt.date(2026, 1, 1 + n % 28)}
                      for n in range(50)]}
        )  # fmt: skip

    def once(self) -> float:
        from django.db import connection

        started = time.perf_counter()
        self.template.render(self.context)
        with connection.cursor() as cursor:
            cursor.execute(self.COUNTING)
            cursor.fetchone()
        return (time.perf_counter() - started) * 1000

    def pace(self, probes: int = 40) -> float:
        return percentile90([self.once() for _ in range(probes)])


def run_child(size: int, repeat: int, runs: int, quickest: float | None) -> dict:
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
        [sys.executable, __file__, "--child", str(size), "--repeat", str(repeat),
         "--runs", str(runs), *(["--quickest", str(quickest)] if quickest else [])],
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
    parser.add_argument("--repeat", type=int, default=40, help="requests per page in a run")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quickest", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(worker(args.child, args.repeat, args.runs, args.quickest)))
        return 0

    sizes = [int(s) for s in args.sizes.split(",")]
    runs, quickest = [], None
    for size in sizes:  # each data set starts from the quickest pace the previous one saw
        runs.append(run_child(size, args.repeat, args.runs, quickest))
        quickest = runs[-1]["pace"]["quickest"]
    if args.json:
        print(json.dumps(runs, indent=2))
    print(f"\nDebrief page benchmark — {runs[0]['vendor']} — {machine()}")
    print(
        f"signed in as {runs[-1]['user']} (an engineer, not staff); {args.runs} runs of "
        f"{args.repeat} requests per page; p50 and p95 are the medians over the runs"
    )
    header = f"{'page':<18}" + "".join(
        f"{'p50 @' + str(r['size']):>12}{'p95 @' + str(r['size']):>12}{'queries':>9}" for r in runs
    )
    for r in runs:
        pace = r["pace"]
        print(
            f"machine pace at {r['size']} incidents (p90 of a fixed template and query): quickest "
            f"{pace['quickest']:.2f} ms, runs {', '.join(f'{p:.2f}' for p in pace['runs'])} ms; "
            f"{pace['set_aside']} run(s) set aside for a slow spell"
        )
    print(header + f"{'runs p95':>16}{'target p95':>12}  verdict")
    failures = 0
    for name in runs[0]["pages"]:
        row = f"{name:<18}"
        for run in runs:
            page = run["pages"][name]
            row += f"{page['p50']:>10.1f}ms{page['p95']:>10.1f}ms{page['queries']:>9}"
        big, small = runs[-1]["pages"][name], runs[0]["pages"][name]
        spread = f"{big['p95_runs'][0]:.1f}-{big['p95_runs'][-1]:.1f}"
        row += f"{spread:>16}"
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
