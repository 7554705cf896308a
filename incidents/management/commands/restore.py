from django.core.management.base import BaseCommand, CommandError

from incidents.backup import BackupError, human_size, restore


class Command(BaseCommand):
    help = (
        "Load a backup made by `backup` into this database. Refuses a database that already "
        "holds incidents, people, teams or lessons unless --force is given."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE", help="A file written by `backup`.")
        parser.add_argument(
            "--force",
            action="store_true",
            help="Overwrite a database that is not empty (everything in it is replaced).",
        )

    def handle(self, *args, file, force, verbosity, **options):
        try:
            result = restore(file, force=force)
        except BackupError as error:
            raise CommandError(str(error), returncode=1) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Restored {result.path} ({human_size(result.size)}) in {result.seconds:.2f} s."
            )
        )
        self.stdout.write(f"Checked: {result.check}.")
        self.stdout.write(f"Rows now: {result.headline()}.")
        if verbosity >= 2:
            for table, count in result.counts.items():
                self.stdout.write(f"  {table}: {count:,}")
        for warning in result.warnings:
            self.stderr.write(self.style.WARNING(warning))
