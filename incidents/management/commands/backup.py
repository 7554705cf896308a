from django.core.management.base import BaseCommand, CommandError

from incidents.backup import BackupError, backup, human_size


class Command(BaseCommand):
    help = (
        "A consistent copy of the whole database while the app keeps serving: a SQLite "
        "database file (online backup API) or a pg_dump custom-format file. The copy is "
        "verified and its size and row counts printed."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE", help="Where to write the backup.")

    def handle(self, *args, file, verbosity, **options):
        try:
            result = backup(file)
        except BackupError as error:
            raise CommandError(str(error), returncode=1) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Backed up the {result.engine} database to {result.path} "
                f"({human_size(result.size)}) in {result.seconds:.2f} s."
            )
        )
        self.stdout.write(f"Verified: {result.check}.")
        self.stdout.write(f"Rows: {result.headline()}.")
        if verbosity >= 2:
            for table, count in result.counts.items():
                self.stdout.write(f"  {table}: {count:,}")
