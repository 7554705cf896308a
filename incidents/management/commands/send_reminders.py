import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from incidents.reminders import due_reminders, not_tried_note, send_reminders


class Command(BaseCommand):
    help = (
        "E-mail owners (or, for items without one, the owning team's members) about action "
        "items due within 3 days and overdue ones: one e-mail per person. Safe to re-run and to "
        "crash half-way: nobody gets the same reminder twice, and none is skipped."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--date",
            type=dt.date.fromisoformat,
            help="Act as if today were this date (YYYY-MM-DD); default: today.",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="List the reminders that are due without recording or sending anything.",
        )

    def handle(self, *args, date=None, dry_run=False, **options):
        if dry_run:
            reminders = due_reminders(today=date or timezone.localdate())
            for reminder in reminders:
                self.stdout.write(
                    f"{reminder.get_kind_display()}: item {reminder.action_item_id} "
                    f"(due {reminder.due:%Y-%m-%d}) to user {reminder.recipient_id}"
                )
            self.stdout.write(f"{len(reminders)} reminder(s) would be recorded.")
            return
        result = send_reminders(today=date)
        summary = (
            f"Recorded {result.recorded} new reminder(s); sent {result.emails} e-mail(s) "
            f"covering {result.delivered} reminder(s)"
        )
        if result.dropped:
            summary += f"; dropped {result.dropped} that no longer applied"
        self.stdout.write(summary + ".")
        if result.failures:
            not_tried = not_tried_note(result.not_tried)
            raise CommandError(
                f"{len(result.failures)} e-mail(s) could not be sent{not_tried}. Their "
                "reminders stay recorded as unsent and go out on the next run:\n  "
                + "\n  ".join(result.failures)
            )
