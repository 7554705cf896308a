"""Retry review e-mails that never went out (mail server was down). Safe to run often."""

from django.core.management.base import BaseCommand

from incidents.review import send_pending_notices


class Command(BaseCommand):
    help = "Send review notices still unsent after 5 minutes; each notice goes out at most once."

    def handle(self, *args, **options):
        count = send_pending_notices()
        self.stdout.write(f"Queued {count} review notice{'s' if count != 1 else ''}.")
