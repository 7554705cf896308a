import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from incidents.exchange import DocumentError, ImportAborted, import_file

# Below this size a file imports in a moment; a progress bar would only flicker.
PROGRESS_FROM_BYTES = 1_000_000


class Command(BaseCommand):
    help = (
        "Import a debrief/1 JSON document (see CONTRACT.md). All or nothing: every record is "
        "checked first; with any problem nothing is written and each problem is listed by "
        "record and field."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE", help="The JSON file; '-' for standard input.")
        parser.add_argument(
            "--create-users",
            action="store_true",
            help="Create people the file names who have no account here, as inactive accounts "
            "without a usable password (an administrator activates them later).",
        )
        parser.add_argument(
            "--update",
            action="store_true",
            help="Replace incidents whose slug already exists (each one atomically, with the "
            "rest of the import); without it an existing slug is an error.",
        )
        parser.add_argument(
            "--progress",
            action="store_true",
            default=None,
            help="Always show a progress bar on standard error (default: for files over 1 MB "
            "when standard error is a terminal).",
        )
        parser.add_argument(
            "--no-progress", dest="progress", action="store_false", help="Never show one."
        )

    def handle(self, *args, file, create_users, update, progress, **options):
        started = time.perf_counter()
        with ExitStack() as stack:
            stream = stack.enter_context(self.open(file))
            size = stream.seek(0, 2)
            stream.seek(0)
            if progress is None:
                progress = size >= PROGRESS_FROM_BYTES and self.stderr.isatty()
            bars = stack.enter_context(Bars(self.stderr._out, size, enabled=progress))
            try:
                report = import_file(
                    stream, update=update, create_users=create_users, progress=bars.update
                )
            except (DocumentError, ImportAborted) as error:
                bars.close()
                raise CommandError(f"{error} Nothing was imported.", returncode=1) from None
        if not report.ok:
            for message in report.errors:
                self.stderr.write(message)
            if report.missing_users:
                names = ", ".join(report.missing_users[:10])
                more = len(report.missing_users) - 10
                one = len(report.missing_users) == 1
                self.stderr.write(
                    f"{len(report.missing_users):,} {'person' if one else 'people'} named in "
                    f"the file {'has' if one else 'have'} no account here ({names}"
                    f"{f' and {more:,} more' if more > 0 else ''}); with --create-users "
                    f"{'it is' if one else 'they are'} created as inactive, without a password."
                )
            raise CommandError(
                f"Nothing was imported: {len(report.errors):,} problem"
                f"{'s' if len(report.errors) != 1 else ''} in {report.invalid_records:,} of "
                f"{report.incidents:,} incidents.",
                returncode=1,
            )
        self.stdout.write(
            self.style.SUCCESS(f"{report.summary()} ({time.perf_counter() - started:.1f} s)")
        )

    def open(self, file):
        if file == "-":
            # Validation reads the file once and the import reads it again: keep stdin on disk.
            spooled = tempfile.TemporaryFile()  # noqa: SIM115 (closed by the caller's ExitStack)
            shutil.copyfileobj(sys.stdin.buffer, spooled)
            spooled.seek(0)
            return spooled
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"{file}: no such file.", returncode=1)
        return path.open("rb")


class Bars:
    """Two tqdm bars on standard error: reading and checking (bytes), then writing (incidents)."""

    def __init__(self, out, size: int, *, enabled: bool):
        self.out = out
        self.size = size
        self.enabled = enabled
        self.reading = None
        self.writing = None
        self.read_done = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def update(self, stage: str, value: int, total: int | None = None) -> None:
        if not self.enabled:
            return
        if stage == "read":
            if self.reading is None:
                self.reading = tqdm(
                    total=self.size, unit="B", unit_scale=True, desc="Checking", file=self.out,
                    leave=False,
                )  # fmt: skip
            self.reading.update(max(0, value - self.read_done))
            self.read_done = max(self.read_done, value)
        else:
            if self.reading is not None and self.writing is None:
                self.reading.close()
            if self.writing is None:
                self.writing = tqdm(total=total, unit=" incidents", desc="Importing", file=self.out)
            self.writing.update(value - self.writing.n)

    def close(self) -> None:
        for bar in (self.reading, self.writing):
            if bar is not None:
                bar.close()
