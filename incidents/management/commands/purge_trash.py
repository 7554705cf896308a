"""Forget trash older than 30 days (run daily, e.g. from cron)."""

from django.core.management.base import BaseCommand

from incidents import undo


class Command(BaseCommand):
    help = "Delete trash entries older than 30 days; they can no longer be restored after that."

    def handle(self, *args, **options):
        count = undo.purge_expired()
        self.stdout.write(f"Purged {count} trash entr{'y' if count == 1 else 'ies'}.")
