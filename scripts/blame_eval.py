"""Measure the blame-language checker against the labelled corpus.

    python scripts/blame_eval.py

Prints precision and recall on the development corpus and, separately, on the held-out
set (written before the rules and never tuned against), lists every misclassified sentence,
and times the checker per kilobyte. A sentence counts as flagged when check() returns at
least one finding. Exits with status 1 if the development corpus scores below 0.95.

Needs no Django setup: incidents/blame.py imports nothing from Django.
"""

import sys
import timeit
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from incidents.blame import check  # noqa: E402  (needs the repo root on sys.path first)
from tests.incidents.blame_corpus import CORPUS, HELD_OUT  # noqa: E402

TARGET = 0.95

# A realistic paragraph: a timeline with people named neutrally, code, one blameful clause.
TIMING_PARAGRAPH = (
    "At 14:02 the deploy pipeline rolled out version 4.2 of the checkout service. The canary "
    "received almost no traffic because the load balancer weights had not been updated, so "
    "the regression in the payment client went unnoticed. Dave should have checked the "
    "dashboard, but the error rate graph was on a second tab. The alert should fire when p99 "
    "latency exceeds 800 ms; it did not, because the threshold was set for the old endpoint. "
    "Priya rolled back at 14:20 and error rates returned to baseline. The script failed to "
    "connect to the replica, and `kubectl rollout undo` took four minutes. The on-call "
    "engineer acknowledged the page within two minutes and opened the incident channel. "
)


def score(labelled):
    """Return (precision, recall, false positives, false negatives) for (text, label) pairs."""
    true_positives, false_positives, false_negatives = 0, [], []
    for text, is_blameful in labelled:
        findings = check(text)
        if findings and is_blameful:
            true_positives += 1
        elif findings:
            false_positives.append((text, findings))
        elif is_blameful:
            false_negatives.append(text)
    flagged = true_positives + len(false_positives)
    blameful = true_positives + len(false_negatives)
    precision = true_positives / flagged if flagged else 1.0
    recall = true_positives / blameful if blameful else 1.0
    return precision, recall, false_positives, false_negatives


def report(title, labelled):
    precision, recall, false_positives, false_negatives = score(labelled)
    blameful = sum(1 for _, label in labelled if label)
    print(f"{title}: {len(labelled)} sentences ({blameful} blameful)")
    print(f"  precision {precision:.3f}   recall {recall:.3f}")
    for text, findings in false_positives:
        flagged = ", ".join(f"{f.text!r} ({f.rule})" for f in findings)
        print(f"  false positive: {text!r}\n      flagged {flagged}")
    for text in false_negatives:
        print(f"  missed: {text!r}")
    return precision, recall


def time_per_kilobyte(text, repeats=7, calls=200):
    """Best-of-`repeats` microseconds per KB, so a busy machine does not inflate the figure."""
    best = min(timeit.repeat(lambda: check(text), number=calls, repeat=repeats)) / calls
    return best * 1e6 / (len(text.encode()) / 1024), best * 1e6


def main():
    precision, recall = report("Development corpus", CORPUS)
    print()
    report("Held-out set (never tuned against)", HELD_OUT)
    print()
    paragraph = (TIMING_PARAGRAPH * 4)[:2048]
    per_kb, per_call = time_per_kilobyte(paragraph)
    print(f"Timing: {per_call:.0f} µs for a 2 KB paragraph = {per_kb:.0f} µs per KB")
    whole_corpus = "\n".join(text for text, _ in CORPUS + HELD_OUT)
    per_kb, per_call = time_per_kilobyte(whole_corpus, calls=20)
    size = len(whole_corpus.encode()) / 1024
    print(
        f"        {per_call:.0f} µs for the whole corpus ({size:.1f} KB) = {per_kb:.0f} µs per KB"
    )
    return 0 if precision >= TARGET and recall >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
