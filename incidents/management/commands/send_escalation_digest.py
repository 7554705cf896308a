import datetime as dt

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from incidents.reminders import not_tried_note, send_escalation_digests


class Command(BaseCommand):
    help = (
        "Weekly: e-mail each team lead the team's open action items overdue by more than "
        "DEBRIEF_ESCALATION_DAYS days. At most one digest per team, lead and week, however often "
        "it runs."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--date",
            type=dt.date.fromisoformat,
            help="Act as if today were this date (YYYY-MM-DD); default: today.",
        )

    def handle(self, *args, date=None, **options):
        result = send_escalation_digests(today=date)
        self.stdout.write(
            f"Sent {result.emails} escalation digest(s) covering {result.delivered} item(s) "
            f"overdue by more than {settings.DEBRIEF_ESCALATION_DAYS} days."
        )
        if result.failures:
            not_tried = not_tried_note(result.not_tried)
            raise CommandError(
                f"{len(result.failures)} digest(s) could not be sent{not_tried}. They go out on "
                "the next run this week:\n  " + "\n  ".join(result.failures)
            )
