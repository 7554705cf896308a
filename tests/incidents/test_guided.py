"""The guided write-up as data: steps, completeness, the checklist and how findings are shown.
Pure functions, no database."""

from incidents import guided
from incidents.guided import FactorFacts, WriteUpFacts


def complete_facts(**overrides) -> WriteUpFacts:
    fields = {
        "title": "Checkout errors",
        "has_start": True,
        "has_services_or_teams": True,
        "impact": "30% of checkouts failed.",
        "customer_visible": True,
        "data_lost": False,
        "timeline_kinds": frozenset({"detection", "action", "resolution"}),
        "timeline_count": 3,
        "questions": 2,
        "answered": 2,
        "factors": (
            FactorFacts(1, "No canary for config", True, True, False),
            FactorFacts(2, "Slow alert", True, False, True),
        ),
        "went_well": "Rollback was quick.",
        "lucky": "Low traffic.",
        "lessons": "Config is code.",
        "action_items": 1,
    }
    fields.update(overrides)
    return WriteUpFacts(**fields)


def test_eight_steps_in_order_with_neighbours():
    """The flow is the eight steps of the issue, each knowing its place."""
    assert guided.STEP_SLUGS == (
        "basics", "impact", "timeline", "inside", "factors", "reflect", "actions", "review",
    )  # fmt: skip
    impact = guided.get_step("impact")
    assert impact.number == 2
    assert guided.previous_step(impact).slug == "basics"
    assert guided.next_step(impact).slug == "timeline"
    assert guided.previous_step(guided.FIRST_STEP) is None
    assert guided.next_step(guided.get_step("review")) is None
    assert guided.get_step("nope") is None


def test_complete_write_up_has_no_gaps_and_every_step_complete():
    """Everything the checklist asks for is there: no open item, every step ✓."""
    facts = complete_facts()
    assert guided.open_gaps(guided.checklist(facts)) == []
    states = guided.step_states(facts)
    assert {slug: state for slug, state in states.items() if slug != "review"} == {
        slug: guided.COMPLETE for slug in guided.STEP_SLUGS if slug != "review"
    }
    assert states["review"] == guided.MISSING  # still a draft


def test_checklist_names_each_gap_with_where_to_fix_it():
    """The four checks of the issue, one line per factor, each with a step and an anchor."""
    facts = complete_facts(
        impact=" ",
        timeline_kinds=frozenset({"action"}),
        factors=(FactorFacts(7, "Alert baseline too long", False, False, False),),
    )
    gaps = {item.key: item for item in guided.open_gaps(guided.checklist(facts))}
    assert set(gaps) == {"impact", "detection", "resolution", "evidence-7", "addressed-7"}
    assert (gaps["impact"].step, gaps["impact"].anchor) == ("impact", "id_impact")
    assert gaps["detection"].step == "timeline"
    assert (gaps["evidence-7"].step, gaps["evidence-7"].anchor) == ("factors", "factors-7")
    assert gaps["addressed-7"].step == "actions"
    assert "Alert baseline too long" in gaps["addressed-7"].label
    assert all(item.fix for item in gaps.values())


def test_accepted_risk_counts_as_handled():
    """A factor accepted as a risk needs no action item."""
    facts = complete_facts(
        factors=(FactorFacts(1, "Vendor outage", True, False, True),), action_items=0
    )
    assert guided.open_gaps(guided.checklist(facts)) == []
    assert guided.step_states(facts)["actions"] == guided.COMPLETE


def test_step_states_distinguish_started_from_missing():
    """A step with something in it but not enough is "started", an empty one "missing"."""
    facts = WriteUpFacts(title="x", has_start=True, went_well="Good rollback", questions=7)
    states = guided.step_states(facts)
    assert states["basics"] == guided.STARTED  # no services or teams yet
    assert states["reflect"] == guided.STARTED
    assert states["timeline"] == guided.MISSING
    assert states["factors"] == guided.MISSING
    assert states["inside"] == guided.MISSING
    assert guided.step_states(WriteUpFacts(status="in_review"))["review"] == guided.COMPLETE


def test_inside_is_complete_only_when_every_question_is_answered():
    """Five of seven answers is progress, not done."""
    assert guided.step_states(complete_facts(questions=7, answered=5))["inside"] == guided.STARTED
    assert guided.step_states(complete_facts(questions=7, answered=7))["inside"] == guided.COMPLETE


def test_findings_escape_the_authors_text_and_mark_only_the_phrase():
    """The highlight is built from escaped pieces: markup the author typed stays text."""
    text = '<img src=x onerror="alert(1)"> Dave should have checked the <b>deploy</b>.'
    found = guided.find_blame("impact", text, names=["Dave"])
    assert len(found) == 1
    html = str(found[0].highlighted)
    assert "<img" not in html and "&lt;img" in html
    assert "<mark>Dave should have checked</mark>" in html
    assert "&lt;b&gt;deploy&lt;/b&gt;" in html


def test_dismissed_findings_stay_hidden_whatever_the_case_or_spacing():
    """A dismissal is for that phrase in that field, not for every field."""
    text = "Dave  Should have checked the canary."
    found = guided.find_blame("impact", text, names=["Dave"])
    assert found
    dismissed = [("impact", found[0].rule, "dave should have checked")]
    assert guided.find_blame("impact", text, dismissed=dismissed, names=["Dave"]) == []
    assert guided.find_blame("lessons", text, dismissed=dismissed, names=["Dave"])


def test_action_items_are_checked_for_fixing_people():
    """Action item titles use the action-item rules: "be more careful" is flagged."""
    found = guided.find_blame("action", "Be more careful with config pushes")
    assert [f.text for f in found] == ["Be more careful"]
    assert guided.find_blame("action", "Run config pushes through the canary") == []


def test_long_lines_are_trimmed_around_the_phrase():
    """The quote shows the phrase in context, not a whole paragraph."""
    text = "word " * 40 + "human error" + " more" * 40
    (finding,) = guided.find_blame("impact", text)
    assert finding.before.startswith("…") and finding.after.endswith("…")
    assert len(finding.before) < 60 and len(finding.after) < 60


def test_dismiss_token_round_trips_a_phrase_with_a_bar():
    """The no-JavaScript dismiss button names field, rule and phrase in one value."""
    finding = guided.ShownFinding("impact", 1, "a | b", "rule", "s", "", "")
    assert guided.parse_dismiss_token(finding.dismiss_token) == ("impact", "rule", "a | b")
    assert guided.parse_dismiss_token("broken") is None


def test_checked_fields():
    """Only the write-up's narrative fields can be checked or dismissed."""
    assert guided.is_checked_field("impact")
    assert guided.is_checked_field("answer-12")
    assert not guided.is_checked_field("answer-x")
    assert not guided.is_checked_field("title")
    assert guided.step_of_field("answer-3") == "inside"
    assert guided.step_of_field("action") == "actions"
