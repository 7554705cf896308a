"""Peak memory and wall time of exporting 10,000 incidents (issue 8: under 300 MB).

    DATABASE_URL=sqlite:////tmp/data-bench.sqlite3 python bench/export_memory.py
    DATABASE_URL=postgres://…/debrief_bench python bench/export_memory.py --incidents 10000

Seeds the database first when it holds fewer incidents than asked (`migrate`, then
`seed_demo --incidents N`), then runs `manage.py export_incidents FILE` in a child process and
reports that process's peak resident memory (ru_maxrss from wait4, so the seeding does not
count), its wall time and the size of the document. For scale it also measures a command that
only starts Django (`manage.py check`). With --import it also times `import_incidents` of the
document into a fresh SQLite database. Exit status 1 when the peak reaches the limit.

Without DATABASE_URL it uses sqlite:////tmp/debrief-bench.sqlite3, never the development
database.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT_MB = 300


def run(args: list[str], env: dict[str, str], *, quiet: bool = True) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one `manage.py` child process."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL if quiet else None,
    )
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        sys.exit(f"manage.py {' '.join(args)} failed with exit status {process.returncode}")
    # Linux reports ru_maxrss in kilobytes.
    return seconds, usage.ru_maxrss / 1024


def incident_count(env: dict[str, str]) -> int:
    output = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "shell", "-c",
         "from incidents.models import Incident; print(Incident.objects.count())"],
        env=env, cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return int(output.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incidents", type=int, default=10_000)
    parser.add_argument("--import", dest="also_import", action="store_true",
                        help="Also time import_incidents of the export into a fresh SQLite DB.")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="Keep the exported document.")
    options = parser.parse_args()

    env = dict(os.environ)
    env.setdefault("DATABASE_URL", "sqlite:////tmp/debrief-bench.sqlite3")
    # Debug off, as in production: with it on Django keeps the last 9,000 SQL statements.
    env.setdefault("DJANGO_DEBUG", "0")
    env.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
    print(f"Database: {env['DATABASE_URL']}")

    run(["migrate", "--no-input", "-v", "0"], env)
    have = incident_count(env)
    if have < options.incidents:
        print(f"Seeding {options.incidents - have:,} incidents…", flush=True)
        seconds, _ = run(["seed_demo", "--incidents", str(options.incidents - have)], env)
        print(f"  seeded in {seconds:.1f} s")
    total = incident_count(env)

    _, baseline_mb = run(["check"], env)
    output = Path(tempfile.gettempdir()) / "debrief-bench-export.json"
    seconds, peak_mb = run(["export_incidents", str(output)], env)
    size_mb = output.stat().st_size / 1_000_000
    print(f"Exported {total:,} incidents ({size_mb:.1f} MB of JSON) in {seconds:.1f} s.")
    print(f"Peak memory of the export process: {peak_mb:.0f} MB "
          f"(Django alone: {baseline_mb:.0f} MB; limit {LIMIT_MB} MB).")  # fmt: skip

    if options.also_import:
        scratch = Path(tempfile.gettempdir()) / "debrief-bench-import.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{scratch}{suffix}").unlink(missing_ok=True)
        import_env = {**env, "DATABASE_URL": f"sqlite:///{scratch}"}
        run(["migrate", "--no-input", "-v", "0"], import_env)
        seconds, import_mb = run(
            ["import_incidents", str(output), "--create-users", "--no-progress"], import_env
        )
        print(f"Imported them into an empty SQLite database in {seconds:.1f} s "
              f"(peak {import_mb:.0f} MB).")  # fmt: skip

    if not options.keep:
        output.unlink(missing_ok=True)
    if peak_mb >= LIMIT_MB:
        sys.exit(f"Peak memory {peak_mb:.0f} MB is over the {LIMIT_MB} MB limit.")


if __name__ == "__main__":
    main()
