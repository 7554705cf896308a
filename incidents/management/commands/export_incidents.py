import datetime as dt
import os
import tempfile
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from incidents.exchange import iter_json
from incidents.models import Incident


class Command(BaseCommand):
    help = (
        "Write incidents as a debrief/1 JSON document (see CONTRACT.md) to FILE, or to standard "
        "output with '-'. Streams: memory use does not grow with the number of incidents."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE", help="Where to write; '-' for standard output.")
        parser.add_argument(
            "--status",
            action="append",
            default=[],
            metavar="STATUS",
            help=f"Only incidents in this status ({', '.join(Incident.Status.values)}); "
            "repeat or separate with commas for several.",
        )
        parser.add_argument(
            "--since",
            metavar="DATE",
            help="Only incidents that started on or after this date (2026-03-02) or time "
            "(2026-03-02T09:00:00Z).",
        )

    def handle(self, *args, file, status, since, **options):
        queryset = Incident.objects.all()
        statuses = [s.strip() for value in status for s in value.split(",") if s.strip()]
        unknown = [s for s in statuses if s not in Incident.Status.values]
        if unknown:
            raise CommandError(
                f"--status {unknown[0]!r} is not one of {', '.join(Incident.Status.values)}."
            )
        if statuses:
            queryset = queryset.filter(status__in=statuses)
        if since:
            queryset = queryset.filter(started_at__gte=parse_since(since))

        started = time.perf_counter()
        counter = [0]
        if file == "-":
            with consistent_snapshot():
                for piece in iter_json(queryset, counter=counter):
                    self.stdout.write(piece, ending="")
            self.stdout.flush()
            # The report goes to standard error so standard output stays one JSON document.
            self.stderr.write(
                f"Exported {counter[0]:,} incidents in {time.perf_counter() - started:.1f} s.",
                style_func=lambda text: text,
            )
            return

        target = Path(file)
        if target.is_dir():
            raise CommandError(f"{file} is a directory; give a file name.")
        if not target.parent.exists():
            raise CommandError(f"The directory {target.parent} does not exist.")
        # Write next to the target and rename at the end: an interrupted export never leaves
        # a half-written file under the final name.
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out, consistent_snapshot():
                for piece in iter_json(queryset, counter=counter):
                    out.write(piece)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        size = target.stat().st_size
        self.stdout.write(
            self.style.SUCCESS(
                f"Exported {counter[0]:,} incidents to {target} ({size / 1_000_000:.1f} MB) in "
                f"{time.perf_counter() - started:.1f} s."
            )
        )


def parse_since(value: str) -> dt.datetime:
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            return timezone.make_aware(dt.datetime.combine(day, dt.time(0)), dt.UTC)
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(
            f"--since {value!r} is not a date like 2026-03-02 or a time like 2026-03-02T09:00:00Z."
        ) from None
    if moment.tzinfo is None:
        raise CommandError(f"--since {value!r} has no time zone; add Z or an offset.")
    return moment


class consistent_snapshot:
    """One read transaction around the whole export, so an export taken while people write is
    one consistent picture rather than chunks from different moments.

    PostgreSQL: REPEATABLE READ, READ ONLY. SQLite: a plain deferred BEGIN on the connection —
    Django's atomic() would say BEGIN IMMEDIATE there and hold the write lock for the whole
    export; a deferred read transaction in WAL mode blocks no writer.
    """

    def __enter__(self):
        self.atomic = None
        self.sqlite = None
        if connection.in_atomic_block:
            return self
        if connection.vendor == "postgresql":
            self.atomic = transaction.atomic()
            self.atomic.__enter__()
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        elif connection.vendor == "sqlite":
            connection.ensure_connection()
            self.sqlite = connection.connection
            self.sqlite.execute("BEGIN DEFERRED")
        return self

    def __exit__(self, *exc):
        if self.atomic is not None:
            return self.atomic.__exit__(*exc)
        if self.sqlite is not None and self.sqlite.in_transaction:
            self.sqlite.execute("COMMIT")
        return False
