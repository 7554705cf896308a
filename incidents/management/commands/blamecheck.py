"""`python manage.py blamecheck [FILE …]`: report blame language in text files.

Prints one JSON object per finding, one per line, and exits with status 1 when anything was
found, so it can gate a CI step or a pre-commit hook:

    $ echo "Root cause: human error." | python manage.py blamecheck
    {"line": 1, "start": 12, "end": 23, "text": "human error", "rule": "human_error", …}
"""

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from incidents.blame import check


class Command(BaseCommand):
    help = (
        "Check text files (or standard input) for blame language. Prints one JSON object per "
        "finding and exits with status 1 if anything was found."
    )
    # Lets tests pass their own stream: call_command("blamecheck", stdin=io.StringIO(...)).
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument(
            "files",
            nargs="*",
            metavar="FILE",
            help="Files to check; '-' or no file at all reads standard input.",
        )
        parser.add_argument(
            "--names",
            default="",
            help="Comma-separated first names or usernames of people, e.g. 'dave,priya,jsmith'.",
        )
        parser.add_argument(
            "--action-items",
            action="store_true",
            help="Treat every line as an action item (stricter rules about fixing people).",
        )

    def handle(self, *args, **options):
        paths = options["files"] or ["-"]
        names = [name.strip() for name in options["names"].split(",") if name.strip()]
        # Read everything first, so a missing file fails before any output.
        texts = [(path, self._read(path, options.get("stdin"))) for path in paths]
        found = False
        for _path, text in texts:
            for finding in check(text, names=names, action_item=options["action_items"]):
                # Exactly the CONTRACT's keys, whatever the number of files: scripts parse this.
                self.stdout.write(json.dumps(finding.as_dict(), ensure_ascii=False))
                found = True
        if found:
            self.stdout.flush()
            raise SystemExit(1)

    def _read(self, path, stdin):
        if path == "-":
            return (stdin or sys.stdin).read()
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read()
        except FileNotFoundError:
            raise CommandError(f"no such file: {path}", returncode=2) from None
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"cannot read {path}: {error}", returncode=2) from None
