import time

from django.core.management.base import BaseCommand, CommandError

from incidents.demo import seed_demo
from incidents.models import Incident


class Command(BaseCommand):
    help = "Add realistic demo data (deterministic for a seed). Adds to existing data."

    def add_arguments(self, parser):
        parser.add_argument(
            "--incidents", type=int, default=60, help="How many incidents (default 60)."
        )
        parser.add_argument("--seed", type=int, default=1, help="Random seed (default 1).")
        parser.add_argument(
            "--if-empty", action="store_true", help="Do nothing when incidents already exist."
        )

    def handle(self, *args, incidents, seed, if_empty=False, **options):
        if if_empty and Incident.objects.exists():
            self.stdout.write("The database already holds incidents; not seeding.")
            return
        if incidents < 0 or incidents > 200_000:
            raise CommandError("--incidents must be between 0 and 200000.")
        started = time.perf_counter()
        counts = seed_demo(incidents=incidents, seed=seed)
        elapsed = time.perf_counter() - started
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {counts['incidents']} incidents, {counts['timeline_entries']} timeline "
                f"entries, {counts['factors']} contributing factors and {counts['action_items']} "
                f"action items in {elapsed:.1f} s."
            )
        )
