"""Send review e-mails that never went out (mail server was down). Safe to run often."""

import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from incidents.reminders import not_tried_note
from incidents.review import deliver_pending_notices


class Command(BaseCommand):
    help = (
        "Send review notices still unsent: at once those whose first try failed, the others "
        "after --older-than minutes. Each notice goes out at most once."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            type=int,
            default=5,
            metavar="MINUTES",
            help="Also send unsent notices never tried that are at least this old (default 5).",
        )

    def handle(self, *args, older_than=5, **options):
        result = deliver_pending_notices(older_than=dt.timedelta(minutes=max(0, older_than)))
        self.stdout.write(f"Sent {result.sent} review notice{'s' if result.sent != 1 else ''}.")
        if result.failures:
            not_tried = not_tried_note(result.not_tried)
            raise CommandError(
                f"{len(result.failures)} review notice(s) could not be sent{not_tried}. They "
                "stay unsent and go out on the next run:\n  " + "\n  ".join(result.failures)
            )
