"""Blame-language checker for post-incident reviews.

Flags wording that puts a person, rather than the system, at the centre of an incident:
hindsight counterfactuals about people ("Dave should have…"), "human error", a person as the
subject of a failure, judging words, self-blame, "the root cause was <person>", "why did
you…" questions, and action items that try to fix people instead of the system.

Pure Python with no Django imports, so it runs from scripts, tests, the management command
and views alike. Text inside code (inline spans, fenced and indented blocks), block quotes,
URLs and quoted log lines is masked before matching: it records what was said or printed,
not how the review is written.

    >>> [f.text for f in check("The deploy failed. Then Dave broke prod.")]
    ['Dave broke']

Speed: every rule names a few keywords, and its regex only runs over lines that contain one
of them, so a typical 2 KB paragraph costs a few hundred microseconds.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["RULES", "Finding", "Rule", "check", "check_action_item"]


def _words(text: str) -> frozenset[str]:
    """A word list written as one whitespace-separated string, for readability."""
    return frozenset(text.split())


# Kinds of clause subject, as classified by _subject_of().
PERSON = "person"  # a pronoun, role ("the on-call engineer"), @handle or known first name
FIRST_PERSON = "first_person"  # "I" or "we": the writer, whose own rules are the self-blame ones
MAYBE_PERSON = "maybe_person"  # an unknown capitalised word that could be a first name
THING = "thing"  # anything else: "the script", "Kubernetes", "`deploy.sh`"
MISSING = "missing"  # no subject at all: "Forgot to renew the certificate."

ONLY_PEOPLE = frozenset({PERSON, FIRST_PERSON})
PEOPLE_OR_NAMES = frozenset({PERSON, FIRST_PERSON, MAYBE_PERSON})
# "We deleted the stuck pods" is how a blameless timeline is written; "Dave deleted…" is not.
OTHER_PEOPLE_OR_NAMES = frozenset({PERSON, MAYBE_PERSON})
NOT_A_THING = frozenset({PERSON, FIRST_PERSON, MAYBE_PERSON, MISSING})


@dataclass(frozen=True)
class Rule:
    """One kind of blame language: a regular expression plus the conditions it needs.

    Patterns run against the lower-cased, masked text of a whole review (see _compile): a
    literal space means "spaces or tabs within a line", and \\s is never used, so a match
    never spans two lines.
    """

    name: str
    pattern: re.Pattern
    suggestion: str
    category: str
    # The pattern only scans lines that contain one of these words; empty means every line.
    # Each is a whole lower-case word of ASCII letters ("double-check" counts as "double").
    keywords: frozenset[str] = frozenset()
    # Which clause subjects make a match count; empty means any. "failed to" only blames
    # when a person failed; "the script failed to connect" is plain systems language.
    subjects: frozenset[str] = frozenset()
    # For adverbials such as "without checking", the subject is the start of the clause
    # ("Dave deployed the change without checking"), not the word just before the match.
    subject_at_clause_start: bool = False
    # Named group that must name a person, e.g. the <who> in "root cause was <who>".
    person_group: str | None = None
    # Skip the match when its sentence also matches this ("would have … if it had …").
    unless_sentence: re.Pattern | None = None
    # Skip the match when the text just before it ends with this ("more clearly").
    unless_after: re.Pattern | None = None
    # Phrases such as "double-check" are fine in a narrative and only suspect in an action
    # item ("Action item: double-check every migration").
    action_items_only: bool = False


@dataclass(frozen=True)
class Finding:
    """One flagged span. `start`/`end` index into line number `line` (1-based)."""

    line: int
    start: int
    end: int
    text: str
    rule: str
    suggestion: str

    def as_dict(self) -> dict:
        return {
            "line": self.line,
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "rule": self.rule,
            "suggestion": self.suggestion,
        }


# --------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------

_PERSON_PRONOUNS = _words(
    "i we he she they you me him her us them someone somebody nobody no-one anyone anybody "
    "everyone everybody whoever myself himself herself themselves ourselves yourself"
)

# Nouns for people and their roles; a trailing "s" (plural) is also accepted.
_ROLE_NOUNS = _words(
    "engineer developer dev operator on-call oncall on-caller oncaller sre admin administrator "
    "sysadmin reviewer approver author team teammate person people human intern contractor "
    "hire manager dba responder commander colleague coworker co-worker programmer coder "
    "tester analyst employee staff staffer deployer committer maintainer newbie junior "
    "folks guy technician consultant lead"
)
# Words that can precede a role inside its noun phrase ("the new on-call engineer").
_ROLE_MODIFIERS = _words(
    "new junior senior tired overworked exhausted primary secondary lead staff principal "
    "database platform infra infrastructure security release backend frontend ops"
)

# The same roles as a regex, for patterns such as "root cause was <the on-call engineer>".
_ROLE_RE = (
    r"(?:engineer|developer|dev|operator|on-?call(?:er)?|sre|admin(?:istrator)?|sysadmin"
    r"|reviewer|approver|author|team|teammate|person|people|human(?! (?:error|mistake|factor))"
    r"|intern|contractor|new hire|hire|manager|dba|responder|incident commander|colleague"
    r"|co-?worker|programmer|coder|tester|analyst|employee|staffer|staff|deployer|committer"
    r"|maintainer|newbie|technician|consultant)s?"
)
_PRONOUN_RE = (
    r"(?:i|me|you|he|him|she|her|they|them|we|us|someone|somebody|nobody|no one|no-one"
    r"|anyone|anybody|everyone|everybody|myself|himself|herself|themselves)"
)
# A phrase that might name a person. Python confirms it with _names_a_person(), because a
# first name can only be told from a product name with word lists.
_WHO_RE = (
    rf"(?:@[\w.-]*\w|(?:(?:the|a|an|our|your|their|this|that|one|some|any|all) )?"
    rf"(?:[\w-]+ )?{_ROLE_RE}\b|{_PRONOUN_RE}\b|\w[\w.-]*\w|\w)"
)

# Things that are not people: a capitalised one is never a first name, and a clause whose
# subject is one of them describes the system.
_SYSTEM_NOUNS = _words(
    """
    access account alarm alert alerts alerting api app application artifact autoscaler backend
    backup balancer batch bot branch broker bucket build cache canary certificate cert change
    channel check checkout ci client cluster code commit config configuration connection
    console consumer container controller cron cronjob daemon dashboard data database db
    dependency deploy deployment disk dns docs documentation endpoint environment error
    failover feature fix flag frontend function gateway graph handler health hook host image
    index ingress instance job key lambda leader library limit load loader lock log logic
    logs loop memory metric migration model module monitor monitoring network node page pager
    patch pipeline platform pod policy pool primary probe process producer prod production
    proxy query queue rate release replica replication repo request retry rollback rollout
    router rule runbook runner scheduler schema script secret server service session shard
    staging storage system table test tests threshold timeout token tool tooling topic traffic
    update upgrade upstream user vault version volume webhook worker workflow zone it this that
    these those there which what nothing everything something
    """
)

# Capitalised words that start sentences or name products; never first names.
_NOT_NAMES = _words(
    """
    the a an and but or so then when while after before during because since if once later
    eventually finally initially meanwhile our their its his her my your we they he she you
    each every some most all both neither another other one two three yesterday today tonight
    monday tuesday wednesday thursday friday saturday sunday january february march april may
    june july august september october november december utc
    why what how where who whom whose which whether is was were are did do does can will would
    could should please here now not no yes however therefore thus hence instead also still
    just only even sorry thanks action todo note update summary impact timeline
    kubernetes k8s postgres postgresql mysql redis memcached kafka zookeeper rabbitmq terraform
    ansible puppet chef salt jenkins docker nginx apache haproxy envoy istio linkerd consul
    vault nomad helm argo argocd flux spinnaker grafana prometheus datadog sentry pagerduty
    opsgenie splunk elasticsearch kibana logstash fluentd loki jaeger cloudflare fastly akamai
    cloudfront aws gcp azure heroku vercel netlify lambda fargate aurora dynamo dynamodb
    cassandra mongo mongodb celery sidekiq airflow spark hadoop flink snowflake bigquery
    bigtable spanner git github gitlab bitbucket jira slack zoom linux ubuntu debian windows
    chrome safari firefox android ios java python ruby rails django node rust go gunicorn
    uwsgi pgbouncer patroni vitess etcd calico cilium karpenter renovate dependabot copilot
    bazel gradle maven webpack redshift athena kinesis okta stripe twilio sendgrid pulumi
    packer nagios zabbix traefik caddy varnish tomcat puma systemd kubelet cron ci cd s3 ec2
    """
)

# Common first names from many languages, so "Priya pushed a bad config" is recognised
# without a team list. Names that are also ordinary nouns ("Page", "Max") are left out.
_FIRST_NAMES = _words(
    """
    aaron abdul abdullah abel abigail abraham ada adam adebayo adeola adrian agnes ahmed
    ahmad aidan aiko aisha akira akosua alan albert alberto alejandro alex alexa alexander
    alexandra alexei alfonso ali alice alicia alina alison amanda amara amelia amir amit amy
    ana anastasia anders andre andrea andreas andrei andrew andy angela angelo anil anita
    anja ann anna anne annika anthony anton antonio anya arjun arnav aroha arthur arun asha
    ashley astrid aurelien ava ayaan ayesha aylin barbara beatriz ben benjamin bernard
    bethany bianca bilal bjorn blessing bob boris brandon brenda brian bridget bruno bryan
    caleb camila carl carla carlos carmen carol caroline carolyn catherine cecilia cedric
    charles charlie charlotte chen chidi chiara chinedu chloe chris christian christina
    christine christopher chun claire clara claudia colin connor craig cristina dan daniel
    daniela danielle dariusz david dave deborah deepa deepak denis dennis derek devon dhruv
    diana diego dimitri divya dmitri dominic donald donna dora doug douglas duc dylan ebony
    eddie edward elena eleni eli elif elijah elisa elizabeth ella ellen emeka emil emily emma
    emre eric erik erin esther ethan eugene eva evan fatima fatma felipe felix fernando finn
    fiona francesca francesco francis frank freya gabriel gabriela gareth gary gavin george
    gerald gianluca gina giulia giuseppe grace greg gregory gustavo hana hannah hans harold
    harry hassan hector heather helen helena henrik henry hiroshi hugo hung ian ibrahim
    ifeoma igor ines ingrid irene isaac isabel isabella ivan jack jacob jake james jamal jan
    jane janet janice jasmine jason javier jay jean jeff jeffrey jennifer jeremy jerome jess
    jessica jesus jia jiahui jim jin jing joan joanna joao joe joel johan john johnny jon
    jonas jonathan jordan jorge jose joseph joshua joy juan judith julia julian julie
    jun justin kai kamal karan karen karina karl kate katherine kathleen katie kavya keith
    kelly ken kenji kenneth kevin khalid kim kimberly kofi kumar kwame kyle lakshmi lara
    laura lauren lea leah lee lei lena leo leon leonardo li liam lila lily lin linda ling
    lisa lucas lucia lucy luis luka lukas mahmoud maja manuel marco marcus margaret maria
    mariam marie marina mario marta martin mary mateo matt matteo matthew maya mehmet mei
    melissa mia michael michelle miguel mike mikhail min ming miriam mohamed mohammed mohan
    monica nadia naomi natalia natalie nathan neha nicholas nick nicola nicole nikhil nikita
    nina noah nora oleg olga oliver olivia omar oscar owen pablo pamela paola patricia patrick
    paul paula pavel pedro peter philip pierre pooja prakash pranav priya priyanka rachel
    rafael rahul raj rajesh ram ramesh raphael raquel ravi rebecca renee ricardo richard
    rita rob robert roberto robin rohan roman ronald rosa ruth ryan sabrina sachin sadia
    sakura sally sam samantha samir samuel sandra sara sarah sean sebastian sergei sergio
    shanice sharon shira shreya simon simone sipho sofia sonia sophia sophie soren stefan
    stephanie stephen steve steven sunil susan suresh svetlana takeshi tamara tanvir tariq
    teresa thabo thomas tim timothy tina tobias tom tomas tony tyler uchenna valentina
    vanessa vera veronica victor victoria vijay vikram vincent virginia vivek wang wei
    william xavier xin yan yara yasmin yiannis yuki yusuf yuto yvonne zainab zara zeynep
    zhang zoe
    """
)

# Words that modify a verb without being its subject; skipped when looking for the subject.
_NOT_SUBJECTS = _words(
    """
    also still just really never not probably likely definitely again already clearly
    obviously simply certainly completely totally apparently unfortunately initially later
    ultimately originally mistakenly accidentally inadvertently actually basically literally
    honestly frankly sadly even only always too then immediately quickly eventually
    subsequently had has have was were is are did does do would could should will may might
    must been be being didn't don't doesn't wasn't weren't hasn't haven't hadn't
    """
)
_PREPOSITIONS = _words(
    "of in on at for from with behind about near during under over inside within into onto "
    "via per like by"
)
_DETERMINERS = _words("the a an our their his her my your this that these those its")
_IRREGULAR_PAST = _words(
    "ran made wrote took chose put set sent saw told gave got went left kept brought built "
    "did said thought"
)
# Suffixes of abstract or technical nouns: "Monitoring", "Replication", "Latency".
_NOUN_SUFFIXES = (
    "ing", "tion", "sion", "ment", "ness", "ity", "ance", "ence", "ure", "age", "ics",
    "ism", "ship", "ery", "ory", "ogy", "ware", "er", "or", "s", "cy",
)  # fmt: skip
# Words after a role that show the role only modifies a thing: "the on-call rotation".
_NOT_PERSON_FOLLOWERS = _words(
    "error errors mistake mistakes factor factors fatigue failure rotation schedule shift "
    "handoff handover onboarding experience culture capacity load laptop phone"
)

# --------------------------------------------------------------------------------------------
# Masking: code, quotes and log lines keep their length but cannot match any rule.
# --------------------------------------------------------------------------------------------

# NUL is neither a word character nor whitespace, so masked text breaks every phrase.
_MASK = "\x00"

_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_BLOCK_QUOTE = re.compile(r" {0,3}>")
_HEADING = re.compile(r" {0,3}#{1,6} +(.*)")
_LIST_ITEM = re.compile(r" {0,3}(?:[-*+]|\d+[.)]) ")
_INLINE_CODE = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)")
_URL = re.compile(r"\b(?:https?|ftp)://[^\s\x00]+")
_QUOTED = re.compile(r"\"[^\"\n]*\"|“[^”\n]*”")
# Traits of a log line, case-sensitive on purpose: "ERROR" is a level, "error" is a word.
_LOG_LINE = re.compile(
    r"\b(?:ERROR|ERR|WARN|WARNING|INFO|DEBUG|TRACE|FATAL|CRITICAL|CRIT|PANIC|NOTICE|SEVERE)\b"
    r"|^(?:error|warning|fatal|panic|warn):"
    r"|\d{1,2}:\d{2}:\d{2}|\d{4}-\d{2}-\d{2}"
    r"|\b\w+=[^\s=]"
    r"|^\s*\[[^\]]+\]"
    r"|\b(?:[A-Z]\w*(?:Exception|Error)|Traceback|errno|ENOENT|ECONNREFUSED|OOMKilled)\b"
    r"|\b[1-5]\d\d [A-Z]"
    r"|^[a-z][\w.\-/]*(?:\[\d+\])?: "
)
_ACTION_LINE = re.compile(
    r" {0,3}(?:[-*+] +)?(?:\[[ xX]\] +|(?:\*\*|__)?(?:action(?: items?)?|actions|ai|todo"
    r"|to-do|follow[- ]?ups?|remediations?|next steps?|corrective actions?)(?:\*\*|__)?"
    r" *[:\-–—])",
    re.IGNORECASE,
)
_ACTION_HEADING = re.compile(
    r"action|follow[- ]?up|remediation|next steps|to-?do|corrective", re.IGNORECASE
)


def _mask_inline(line: str) -> str:
    """Blank out inline code, URLs and quoted log lines within one line of prose."""
    if "`" in line:
        line = _INLINE_CODE.sub(lambda m: _MASK * len(m.group()), line)
    if "://" in line:
        line = _URL.sub(lambda m: _MASK * len(m.group()), line)
    if '"' in line or "“" in line:
        line = _QUOTED.sub(
            lambda m: _MASK * len(m.group()) if _LOG_LINE.search(m.group()[1:-1]) else m.group(),
            line,
        )
    return line


def _mask(lines: list[str], all_action_items: bool) -> tuple[list[str], list[bool]]:
    """Return the lines with non-prose masked, and which lines are action items.

    Follows Markdown closely enough for reviews: fenced blocks, indented code after a blank
    line (but not list continuations), block quotes, and lists under an "Action items"
    heading.
    """
    masked: list[str] = []
    is_action: list[bool] = []
    fence = ""  # the opening fence while inside a fenced block
    previous_blank = True
    in_indented_code = False
    last_prose_was_list = False
    under_action_heading = False
    for line in lines:
        fence_match = _FENCE.match(line)
        if fence:
            closing = fence_match.group(1) if fence_match else ""
            if closing[:1] == fence[0] and len(closing) >= len(fence):
                fence = ""
            masked.append(_MASK * len(line))
            is_action.append(False)
            continue
        if fence_match:
            fence = fence_match.group(1)
            masked.append(_MASK * len(line))
            is_action.append(False)
            previous_blank = False
            continue
        if not line.strip():
            masked.append(line)
            is_action.append(False)
            previous_blank = True
            continue
        indented = line.startswith(("    ", "\t"))
        if indented and (in_indented_code or (previous_blank and not last_prose_was_list)):
            in_indented_code = True
            masked.append(_MASK * len(line))
            is_action.append(False)
            previous_blank = False
            continue
        in_indented_code = False
        previous_blank = False
        if _BLOCK_QUOTE.match(line):
            masked.append(_MASK * len(line))
            is_action.append(False)
            continue
        heading = _HEADING.match(line)
        if heading:
            under_action_heading = bool(_ACTION_HEADING.search(heading.group(1)))
            last_prose_was_list = False
        elif not indented:
            last_prose_was_list = bool(_LIST_ITEM.match(line))
        masked.append(_mask_inline(line))
        is_action.append(
            all_action_items
            or bool(_ACTION_LINE.match(line))
            or (under_action_heading and heading is None)
        )
    return masked, is_action


# --------------------------------------------------------------------------------------------
# Who is the subject?
# --------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"@[\w.-]*\w|\x00+|\w+(?:[-'’.]\w+)*")
# Where a clause starts: sentence punctuation, commas, brackets, dashes and conjunctions.
_CLAUSE_BREAK = re.compile(
    r"[.!?;:](?=[^\S\n]|$)|[,()\[\]\"“”—–]|[^\S\n]-[^\S\n]"
    r"|\b(?:and|but|or|so|yet|then|because|since|when|whenever|while|after|before|until"
    r"|although|though|if|unless|once|as|where|whereas)\b"
)  # run on lower-cased text
# Breaks after which a clause may still share the previous clause's subject:
# "Dave restarted the pod and forgot to…", "Dave, the on-call engineer, failed to…".
_SHARED_SUBJECT_BREAKS = frozenset({",", "and", "but", "or", "then", "so", "yet", "(", ")"})


def _is_titlecase(word: str) -> bool:
    return len(word) > 1 and word[0].isupper() and word[1:].islower() and word.isalpha()


def _is_role(word: str) -> bool:
    lower = word.lower()
    return lower in _ROLE_NOUNS or (lower.endswith("s") and lower[:-1] in _ROLE_NOUNS)


def _person_kind(token: str, names: frozenset[str], *, after_determiner: bool = False) -> str:
    """Classify one word as PERSON, MAYBE_PERSON or THING."""
    if token.startswith(_MASK):
        return THING
    if token.startswith("@"):
        return PERSON
    lower = token.lower()
    if lower.endswith(("'s", "’s")):
        return THING  # a possessive ("Dave's script") is never the subject itself
    if lower in ("i", "we"):
        return FIRST_PERSON
    if lower in names or lower in _PERSON_PRONOUNS or _is_role(lower):
        return PERSON
    if not _is_titlecase(token) or lower in _NOT_NAMES or lower in _SYSTEM_NOUNS:
        return THING
    if lower in _FIRST_NAMES:
        return PERSON
    if after_determiner or lower.endswith(_NOUN_SUFFIXES):
        return THING
    return MAYBE_PERSON


def _looks_like_verb(token: str) -> bool:
    lower = token.lower()
    return (len(lower) > 4 and lower.endswith("ed")) or lower in _IRREGULAR_PAST


def _first_noun_phrase_kind(tokens: list[tuple[str, int]], names: frozenset[str]) -> str:
    """Subject of a clause read from its start: "The on-call engineer restarted…"."""
    previous = ""
    for token, _ in tokens[:5]:
        lower = token.lower()
        if lower in _DETERMINERS or lower in _NOT_SUBJECTS:
            previous = lower
            continue
        kind = _person_kind(token, names, after_determiner=previous in _DETERMINERS)
        if kind != THING or lower in _SYSTEM_NOUNS or _looks_like_verb(token):
            return kind
        previous = lower
    return THING


def _noun_phrase_start(tokens: list[tuple[str, int]]) -> int:
    """Start of the noun phrase that ends with the last token: "the new on-call engineer"."""
    index = len(tokens) - 1
    if _is_role(tokens[index][0]):
        while index > 0:
            word = tokens[index - 1][0].lower()
            is_article = word in ("the", "a", "an", "our", "their", "my", "your", "his", "her")
            if not (is_article or word in _ROLE_MODIFIERS or _is_role(word)):
                break
            index -= 1
            if is_article:
                break
    return tokens[index][1]


def _subject_of(
    line: str, position: int, names: frozenset[str], *, from_clause_start: bool = False
) -> tuple[str, int | None]:
    """Find the subject of the clause that ends at `position` in `line`.

    Returns its kind and, when it sits right before the match, where it starts (so the
    finding can include it: "Dave broke" rather than "broke").
    """
    # A subject more than 150 characters back is rare, and scanning further costs time.
    prefix = line[max(0, position - 150) : position]
    offset = position - len(prefix)
    segments: list[tuple[int, int, str]] = []  # (start, end, the break that opened it)
    start, opened_by = 0, "."
    for brk in _CLAUSE_BREAK.finditer(_lower_keeping_length(prefix)):
        segments.append((start, brk.start(), opened_by))
        start, opened_by = brk.end(), brk.group().strip().lower()
    segments.append((start, len(prefix), opened_by))

    seg_start, seg_end, opened_by = segments[-1]
    tokens = [(m.group(), m.start()) for m in _TOKEN.finditer(prefix, seg_start, seg_end)]
    if any(token.lower() in ("who", "whoever") for token, _ in tokens):
        return PERSON, None  # "the engineer who deployed failed to…"

    if from_clause_start:
        words = [t for t in tokens if t[0].lower() not in _NOT_SUBJECTS]
        if words:
            return _first_noun_phrase_kind(words, names), None
    else:
        while tokens and tokens[-1][0].lower() in _NOT_SUBJECTS:
            tokens.pop()
        # An "-ly" adverb ("Sam accidentally rebooted") is skipped unless it is a name (Emily).
        while (
            tokens
            and tokens[-1][0].lower().endswith("ly")
            and _person_kind(tokens[-1][0], names) == THING
        ):
            tokens.pop()
        if tokens:
            head = tokens[-1][0]
            previous = tokens[-2][0].lower() if len(tokens) > 1 else ""
            kind = _person_kind(head, names, after_determiner=previous in _DETERMINERS)
            if kind != THING:
                return kind, offset + _noun_phrase_start(tokens)
            if _looks_like_verb(head):
                return _first_noun_phrase_kind(tokens, names), None
            # "the person in charge of the rollout failed to…": the head precedes the
            # first preposition or participle.
            for index in range(1, len(tokens)):
                word = tokens[index][0].lower()
                if word in _PREPOSITIONS or word.endswith("ing"):
                    if _person_kind(tokens[index - 1][0], names) == PERSON:
                        return PERSON, None
                    break
            return THING, None

    # Nothing before the match in this clause: maybe it shares an earlier clause's subject.
    index = len(segments) - 1
    while index > 0 and opened_by in _SHARED_SUBJECT_BREAKS:
        index -= 1
        seg_start, seg_end, next_opened_by = segments[index]
        words = [
            (m.group(), m.start())
            for m in _TOKEN.finditer(prefix, seg_start, seg_end)
            if m.group().lower() not in _NOT_SUBJECTS
        ]
        # Skip relative clauses and empty gaps: "The script, which Dave wrote, failed to…".
        if words and words[0][0].lower() not in ("which", "that", "who"):
            return _first_noun_phrase_kind(words, names), None
        opened_by = next_opened_by
    return MISSING, None


def _names_a_person(text: str, following: str, names: frozenset[str]) -> bool:
    """Whether a phrase captured as <who> ("the on-call engineer", "Dave", "@kim") is a person."""
    tokens = _TOKEN.findall(text)
    if not tokens:
        return False
    if tokens[0].startswith("@"):
        return True
    last = tokens[-1]
    # "root cause was the on-call rotation", "…was human error": the role modifies a thing.
    next_word = following.lower()
    if _is_role(last) and (next_word in _SYSTEM_NOUNS or next_word in _NOT_PERSON_FOLLOWERS):
        return False
    if len(tokens) == 1 and last.lower() in _PERSON_PRONOUNS:
        return True
    kind = _person_kind(last, names, after_determiner=len(tokens) > 1)
    if kind == MAYBE_PERSON:
        # "due to Black Friday traffic": an unknown capital followed by another is a name of
        # something else.
        return len(tokens) == 1 and not following[:1].isupper()
    return kind in (PERSON, FIRST_PERSON)


# --------------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------------

# Escapes and named groups keep their capitals when a pattern is lowered.
_ESCAPE_OR_CAPITAL = re.compile(r"\\.|\(\?P[<=]|[A-Z]")


def _compile(pattern: str) -> re.Pattern:
    """Compile a rule pattern for the lower-cased review text.

    Matching lower-cased text without re.IGNORECASE is about three times faster. Capitals in
    the pattern are lowered (escapes such as \\S are kept), and a literal space becomes
    "spaces or tabs", so every rule scans the whole review in one pass and each finding still
    lies within one line.
    """
    lowered = _ESCAPE_OR_CAPITAL.sub(
        lambda m: m.group() if len(m.group()) > 1 else m.group().lower(), pattern
    )
    return re.compile(lowered.replace(" ", r"[^\S\n]+"))


def _compile_context(pattern: str) -> re.Pattern:
    """Compile a pattern that runs on one sentence or on the text just before a match."""
    return re.compile(pattern, re.IGNORECASE)


_SUGGEST_COUNTERFACTUAL = (
    "Describe what the person saw and why the action made sense at the time; then name what "
    "in the system would have made the risk visible."
)
_SUGGEST_OMISSION = (
    "Say what made the step easy to miss (no prompt, no check, unclear runbook) instead of "
    "saying who skipped it."
)
_SUGGEST_HUMAN_ERROR = (
    "Name the condition in the system that allowed this, not the person: what made the error "
    "easy to make and hard to catch?"
)
_SUGGEST_PERSON = (
    "Name the condition in the system that allowed this, not the person: describe the action "
    "neutrally ('the config change was deployed') and what made it look safe."
)
_SUGGEST_JUDGEMENT = (
    "Drop the judgement and state the facts: what the person knew, saw and was asked to do at "
    "the time."
)
_SUGGEST_HINDSIGHT = (
    "Drop the hindsight word: what is obvious now was not obvious then. Describe what was "
    "visible at the time and where."
)
_SUGGEST_ATTENTION = (
    "Describe what information was available, where it was shown and what else was competing "
    "for attention at that moment."
)
_SUGGEST_SELF = (
    "Describe your actions as neutral facts and what made them reasonable at the time; the "
    "review is about the system, not about you."
)
_SUGGEST_ROOT_CAUSE = (
    "Name the system conditions that combined to cause this; a person is never the root cause."
)
_SUGGEST_WHY = (
    "Ask 'how' and 'what' questions instead: 'What did you see at that point?', 'How did "
    "this action make sense then?'"
)
_SUGGEST_PEOPLE_FIX = (
    "Fix the system, not the people: add a guard, check, automation or clearer signal instead "
    "of asking people to be more careful."
)
_SUGGEST_REMIND = (
    "Replace the reminder with a guardrail: a check, default or automation that still works "
    "when someone forgets."
)
_SUGGEST_TRAINING = (
    "Ask what the system made hard to know, then improve the tool, docs or defaults rather "
    "than retraining people."
)
_SUGGEST_DOUBLE_CHECK = (
    "Automate the check (CI, pre-deploy validation, a confirmation prompt) instead of asking "
    "people to double-check."
)
_SUGGEST_PUNISH = (
    "Drop the threat of consequences: people who fear punishment hide information, and the "
    "next review learns less."
)

# "Anyone could have made this mistake" says the opposite of blame.
_ANYONE_COULD = _compile_context(
    r"\b(?:anyone|anybody|any (?:one )?of us|any (?:engineer|developer|operator|person"
    r"|responder)|nobody|no one|no-one) (?:could|might|would|can)\b"
)

_PASSIVE_PARTICIPLE = (
    r"(?:\w+ed|told|caught|seen|shown|given|sent|taught|known|made|done|put|brought|built"
    r"|kept|left|taken|written|run|set|split|hit|cut)\b"
)
_FAILURE_VERBS = (
    r"(?:broke|caused|deleted|dropped|wiped|nuked|trashed|corrupted|clobbered|overwrote"
    r"|misconfigured|mistyped|misread|misjudged|misunderstood|missed|rushed)"
)
_BAD_ADJECTIVES = (
    r"(?:bad|broken|wrong|faulty|buggy|incorrect|malformed|invalid|untested|bogus|botched)"
)
_BAD_OBJECT = (
    r"(?:pushed|merged|deployed|shipped|committed|applied|ran|used|typed|picked|chose"
    r"|selected|edited|rolled out|released|approved|uploaded|entered|sent|set|restarted"
    r"|rebooted|killed|targeted|hit|wrote|changed|modified|updated|configured)"
    r" (?:(?:a|an|the|some|his|her|their|its|that|this) )?(?:very |totally |completely )?"
    rf"{_BAD_ADJECTIVES}\b"
)
_HUMAN_CHECKS = (
    r"(?:check|checked|test|tested|verify|verified|validate|validated|read|notice|noticed"
    r"|review|reviewed|follow|followed|look|looked|confirm|confirmed|double-check|ask|asked"
    r"|wait|waited|consider|considered|think|thought|escalate|escalated|respond|responded"
    r"|acknowledge|acknowledged|bother|bothered|monitor|monitored|watch|watched)\b"
)
_FAULT_NOUNS = r"(?:fault|mistake|error|blunder|screw-?up|oversight|negligence|carelessness|typo)"

RULES: tuple[Rule, ...] = (
    # Order matters only for ties: when two rules flag exactly the same span, the earlier,
    # more specific one is reported.
    # --- Self-blame ------------------------------------------------------------------------
    Rule(
        "self_blame_fault",
        _compile(
            r"\b(?:my|our) (?:own )?(?:fault|bad|mistake|screw-?up|blunder|oversight"
            r"|negligence|carelessness)\b"
            r"|\b(?:that|this|it)(?:'s|’s| is| was| one is| one's| one’s| one was)? "
            r"(?:all |totally |entirely |squarely |completely )?on me\b"
            r"|\b(?:(?:stupid|dumb|silly|careless|big|huge|rookie|embarrassing|obvious|basic) )?"
            r"(?:mistake|error|oversight|failure|lapse|screw-?up|blunder) on my part\b"
            r"|\bI(?:'m|’m| am| was) (?:the one )?(?:to blame|at fault|responsible for "
            r"(?:the|this|that) (?:outage|incident|mess|failure|breakage|data loss|downtime))\b"
            r"|\b(?:the )?(?:root(?: cause)?(?: of (?:the|this|our|all) \w+)?|problem|issue"
            r"|cause|culprit|weak link) (?:is|was) (?:me|myself)\b"
            r"|\b(?:blame (?:me|myself)|(?:the )?blame (?:is|lies|falls) (?:on|with) me)\b"
            r"|\bI take (?:(?:full|all|the|complete|total|sole) )*(?:blame|responsibility)\b"
        ),
        _SUGGEST_SELF,
        "self_blame",
        keywords=_words("my our me myself i"),
    ),
    Rule(
        "self_blame_action",
        _compile(
            r"\bI (?:(?:really|totally|completely|just|basically|kind of|kinda|accidentally"
            r"|clearly|stupidly|then|also|definitely|honestly|royally|badly|simply) )*"
            r"(?:(?:messed|screwed|fucked|mucked|goofed|cocked) (?:\w+ ){0,3}?up\b"
            r"|(?:messed|screwed|goofed|botched|bungled|blew|broke|caused|forgot|ignored"
            r"|missed|overlooked|neglected|fumbled|dropped the ball)\b(?: to\b| about\b)?"
            r"|fat(?:-| )?fingered\b|made (?:a|an|the|this|that) (?:\w+ )?(?:mistake|error"
            r"|blunder|typo)\b|" + _BAD_OBJECT + r"|failed to\b"
            r"|(?:should|ought to)(?:n't|n’t| not| never)?(?:'ve|’ve| have)(?: \w+)?\b"
            r"|(?:didn't|did not|didn’t|never) " + _HUMAN_CHECKS + r")"
        ),
        _SUGGEST_SELF,
        "self_blame",
        keywords=_words("i"),
    ),
    Rule(
        "self_blame_judgement",
        _compile(
            r"\bI(?:'m|’m| am| was| feel| felt)(?: like)? (?:(?:so|such|really|very|a total"
            r"|a complete|an absolute|totally|incredibly|pretty) )*(?:an? )?(?:idiot|careless"
            r"|sloppy|stupid|lazy|negligent|incompetent|reckless|moron|fool|terrible|awful"
            r"|dumb|horrible)\b|\bI blame myself\b"
            r"|\bI let (?:the team|everyone|everybody|you all|you|us|the company|people) down\b"
        ),
        _SUGGEST_SELF,
        "self_blame",
        keywords=_words("i"),
    ),
    # --- A person as the root cause --------------------------------------------------------
    Rule(
        "root_cause_person",
        _compile(
            r"\b(?:(?:root|primary|main|real|underlying|ultimate|actual) cause|the cause"
            r"|the culprit|the reason)"
            r"(?: (?:of|for) [^.,;:\n\x00]{1,60}?)?(?:[^\S\n]*:| was| is| =) "
            r"(?:(?:simply|just|clearly|obviously|really) )?(?P<who>" + _WHO_RE + r")"
            r"(?!['’]s)(?: (?P<after>\w+))?"
        ),
        _SUGGEST_ROOT_CAUSE,
        "root_cause_person",
        keywords=_words("cause culprit reason"),
        person_group="who",
    ),
    Rule(
        "person_is_root_cause",
        _compile(
            r"\b(?:was|is|were|are) (?:the )?(?:(?:root|primary|main|real|underlying|ultimate)"
            r" cause|culprit)\b"
        ),
        _SUGGEST_ROOT_CAUSE,
        "root_cause_person",
        keywords=_words("cause culprit"),
        subjects=PEOPLE_OR_NAMES,
    ),
    # --- "Why did you…" --------------------------------------------------------------------
    Rule(
        "why_question",
        _compile(
            r"\bwhy (?:on earth |the hell )?(?:did|didn't|didn’t|didnt|do|don't|don’t|does"
            r"|doesn't|would|wouldn't|wouldn’t|had|hadn't|has|hasn't|could|couldn't|should"
            r"|shouldn't|won't|can't)(?: not)? (?P<who>" + _WHO_RE + r")\b(?!['’])"
            r"(?: (?P<after>\w+))?"
        ),
        _SUGGEST_WHY,
        "why_question",
        keywords=_words("why"),
        person_group="who",
    ),
    Rule(
        "why_were_you",
        # "Why were you…" accuses; "why were we paged twice?" asks about the system.
        _compile(
            r"\bwhy (?:on earth |the hell )?(?:were|weren't|was|wasn't|are|aren't|is|isn't)"
            r"(?: not)? (?P<who>" + _WHO_RE + r")\b(?!['’])"
            r"(?! (?:not )?(?:\w+ed|been|being|woken|told|sent|given|shown|kept|left|taken)\b)"
            r"(?: (?P<after>\w+))?"
        ),
        _SUGGEST_WHY,
        "why_question",
        keywords=_words("why"),
        person_group="who",
    ),
    Rule(
        "how_could_you",
        _compile(r"\bhow could (?!we\b|i\b|anyone\b|anybody\b)(?P<who>" + _WHO_RE + r")\b(?!['’])"),
        _SUGGEST_WHY,
        "why_question",
        keywords=_words("how"),
        person_group="who",
    ),
    Rule(
        "what_were_you_thinking",
        _compile(r"\bwhat (?:on earth )?(?:were|was) (?:you|they|he|she|\w+) thinking\b"),
        _SUGGEST_WHY,
        "why_question",
        keywords=_words("thinking"),
    ),
    # --- "Human error" ---------------------------------------------------------------------
    Rule(
        "human_error",
        _compile(
            r"\b(?:human|operator|user|pilot|engineer|engineering|developer|admin|staff"
            r"|personnel|people|manual)(?:-| )(?:error|mistake|failure|fault|slip)s?\b"
            r"(?! (?:code|codes|rate|rates|response|responses|message|messages|page|pages"
            r"|count|counts|budget|budgets|metric|metrics|threshold|thresholds|class|type))"
            r"|\b(?:PEBKAC|PEBCAK|PICNIC|ID-?10-?T|layer(?: |-)?8 (?:issue|problem|error))\b"
            r"|\bfat(?:-| )?finger(?:ed|ing)? (?:mistake|error|typo|slip)\b"
        ),
        _SUGGEST_HUMAN_ERROR,
        "human_error",
        keywords=_words(
            "human operator user pilot engineer engineering developer admin staff personnel "
            "people manual pebkac pebcak picnic id layer fat"
        ),
    ),
    # --- Action items and resolutions that try to fix people -------------------------------
    Rule(
        "people_fix_careful",
        _compile(
            r"\b(?:be|being|get|getting|are|is|were|was|stay) (?:more|extra|much more|a lot more"
            r"|a bit more|especially|super) careful\b|\bmore careful(?:ly)?\b"
            r"|\btake (?:more|extra|greater) care\b|\bexercise (?:more |extra |greater )?caution\b"
        ),
        _SUGGEST_PEOPLE_FIX,
        "people_fix",
        keywords=_words("careful carefully care caution"),
    ),
    Rule(
        "people_fix_attention",
        _compile(
            r"\bpay(?:ing|s)? (?:more|closer|better|extra|careful|particular|special|much more) "
            r"attention\b"
        ),
        _SUGGEST_PEOPLE_FIX,
        "people_fix",
        keywords=_words("attention"),
    ),
    Rule(
        "people_fix_vigilance",
        _compile(
            r"\b(?:be|stay|remain|being|more|extra) vigilant\b"
            r"|\b(?:increased|more|extra|greater|constant) vigilance\b"
        ),
        _SUGGEST_PEOPLE_FIX,
        "people_fix",
        keywords=_words("vigilant vigilance"),
    ),
    Rule(
        "people_fix_stay_alert",
        _compile(r"\b(?:be|stay|remain)(?: more)? alert\b(?! (?:to|for)\b)"),
        _SUGGEST_PEOPLE_FIX,
        "people_fix",
        keywords=_words("alert"),
    ),
    Rule(
        "people_fix_try_harder",
        _compile(
            r"\b(?:try|trying|tries) harder\b|\bdo better\b"
            r"|\b(?:be|being) more (?:diligent|thorough|mindful|attentive|disciplined"
            r"|conscientious)\b"
            r"|\b(?:more|extra|greater) (?:diligence|discipline|attentiveness|mindfulness)\b"
        ),
        _SUGGEST_PEOPLE_FIX,
        "people_fix",
        keywords=_words(
            "harder better diligent thorough mindful attentive disciplined conscientious "
            "diligence discipline attentiveness mindfulness"
        ),
    ),
    Rule(
        "people_fix_never_again",
        _compile(
            r"\b(?:(?:don't|do not|never) (?:let )?(?:this|that|it) happen again"
            r"|not (?:do|let) (?:this|that) (?:happen )?again)\b"
        ),
        _SUGGEST_PEOPLE_FIX,
        "people_fix",
        keywords=_words("again"),
    ),
    Rule(
        "people_fix_remind",
        _compile(
            r"\bremind(?:ed|ing)? (?:[\w@.-]+ ){1,3}?(?:to|about|that|of)\b"
            r"|\breminders? (?:to|for) (?:all |the |our )?(?:[\w-]+ )?"
            r"(?:engineers|developers|devs|team|teams|everyone|staff|on-?call\w*|operators"
            r"|people|folks)\b"
            r"|\b(?:remember|don't forget|do not forget|never forget|not forget) to\b"
        ),
        _SUGGEST_REMIND,
        "people_fix",
        keywords=_words("remind reminded reminding reminder reminders remember forget"),
        subjects=NOT_A_THING,
    ),
    Rule(
        "people_fix_retrain",
        _compile(
            r"\bre-?train(?:ed|ing|s)? (?:all |every |each )?(?P<who>" + _WHO_RE + r")\b(?!['’])"
            r"(?: (?P<after>\w+))?"
        ),
        _SUGGEST_TRAINING,
        "people_fix",
        keywords=_words("retrain retrained retraining retrains re"),
        person_group="who",
    ),
    Rule(
        "people_fix_awareness",
        _compile(
            r"\b(?:mandatory|additional|more|extra|better|refresher|remedial|further) training\b"
            r"|\b(?:raise|raising|increase|increasing|improve|improving|build|building|spread)"
            r" (?:\w+ )?awareness\b|\bawareness (?:training|sessions?|campaign|email)\b"
        ),
        _SUGGEST_TRAINING,
        "people_fix",
        keywords=_words("training awareness"),
    ),
    Rule(
        "people_fix_educate",
        _compile(r"\b(?:educate|educating|coach|coaching|re-?educate) (?P<who>" + _WHO_RE + ")"),
        _SUGGEST_TRAINING,
        "people_fix",
        keywords=_words("educate educating coach coaching reeducate"),
        person_group="who",
    ),
    Rule(
        "people_fix_tell",
        _compile(
            r"\b(?:tell|told|ask|asked|instruct|instructed|warn|warned) (?:all )?"
            r"(?P<who>" + _WHO_RE + r") (?:to stop|(?:to )?not to|never to|to never"
            r"|to be (?:more |extra )?(?:careful|vigilant|mindful|attentive|diligent|thorough))\b"
        ),
        _SUGGEST_PEOPLE_FIX,
        "people_fix",
        keywords=_words("tell told ask asked instruct instructed warn warned"),
        person_group="who",
    ),
    Rule(
        "people_fix_accountable",
        _compile(
            r"\bhold(?:ing|s)? (?:[\w@.-]+ ){1,3}?(?:accountable|responsible)\b"
            r"|\b(?:be|been|being|is|are|was|were|get|got) held (?:\w+ )?accountable\b"
            r"|\b(?:disciplinary|reprimand\w*|performance improvement plan)\b"
        ),
        _SUGGEST_PUNISH,
        "people_fix",
        keywords=_words(
            "hold holding holds held disciplinary reprimand reprimanded reprimands performance"
        ),
    ),
    Rule(
        "people_fix_punish",
        _compile(
            r"\b(?:sack|sacked|demote|demoted|write up|punish|punished|penali[sz]e|penali[sz]ed"
            r"|discipline|disciplined) (?P<who>" + _WHO_RE + ")"
        ),
        _SUGGEST_PUNISH,
        "people_fix",
        keywords=_words(
            "sack sacked demote demoted write punish punished penalise penalize penalised "
            "penalized discipline disciplined"
        ),
        person_group="who",
    ),
    Rule(
        "people_fix_fire",
        _compile(r"\bfir(?:e|ed|ing) (?P<who>" + _WHO_RE + ")"),
        _SUGGEST_PUNISH,
        "people_fix",
        keywords=_words("fire fired firing"),
        person_group="who",
    ),
    Rule(
        "people_fix_should_read",
        _compile(
            r"\b(?:everyone|everybody|all engineers|engineers|developers|devs|operators"
            r"|responders|people|staff|on-?call(?:ers?)?|the team|teams|reviewers) (?:should"
            r"|must|need to|needs to|have to|has to|will need to|are expected to|are required to"
            r"|to) (?:always |carefully |properly |all )?(?:read|re-?read|familiari[sz]e|study"
            r"|learn|memori[sz]e|follow|remember|understand|know|check|verify)\b"
        ),
        _SUGGEST_PEOPLE_FIX,
        "people_fix",
        keywords=_words(
            "everyone everybody engineers developers devs operators responders people staff "
            "call oncall oncallers team teams reviewers"
        ),
    ),
    Rule(
        "people_fix_double_check",
        _compile(
            r"\b(?:must|should|shall|need to|needs to|have to|has to|will|always|please)"
            r"(?: always)? (?:double|triple)(?:-| )?check\w*"
        ),
        _SUGGEST_DOUBLE_CHECK,
        "people_fix",
        keywords=_words("double triple doublecheck triplecheck"),
        subjects=NOT_A_THING,
    ),
    Rule(
        "action_double_check",
        # Lookbehinds need a fixed width, hence \x20 rather than a space: "an automated
        # double-check in CI" describes a system.
        _compile(
            r"(?<!automated\x20)(?<!automatic\x20)(?<!\ba\x20)(?<!\ban\x20)"
            r"\b(?:double|triple)(?:-| )?check\w*"
        ),
        _SUGGEST_DOUBLE_CHECK,
        "people_fix",
        keywords=_words("double triple doublecheck triplecheck"),
        action_items_only=True,
    ),
    Rule(
        "action_be_careful",
        _compile(
            r"\b(?:be |being )?careful(?:ly)?\b|\bcaution\b|\bbe sure to\b|\bmake sure"
            r" (?:to|you|we|everyone|engineers|people|the team|all engineers|devs|developers"
            r"|on-?call\w*)\b|\bensure (?:that )?(?:everyone|engineers|people|developers"
            r"|the team|on-?call\w*|staff|all engineers) (?:\w+ ){0,2}?(?:checks?|reads?"
            r"|verif(?:y|ies)|follows?|remembers?|understands?|knows?|(?:are|is) aware)\b"
        ),
        _SUGGEST_PEOPLE_FIX,
        "people_fix",
        keywords=_words("careful carefully caution sure ensure"),
        action_items_only=True,
    ),
    Rule(
        "action_training",
        _compile(
            r"\bre-?train(?:ing|ed)?\b(?! (?:(?:the|a|our) )?(?:[\w-]+ )?(?:models?|classifiers?"
            r"|embeddings?|networks?|weights|data))|\btrain (?:the |all |our )?(?:engineers"
            r"|developers|team|staff|people|everyone|on-?call\w*)\b"
            r"|\btraining (?:for|on|session|sessions|course|program|programme)\b"
            r"|\b(?:send|write|post) (?:out )?(?:a |an )?(?:\w+ )?(?:reminder|email|memo"
            r"|announcement|message) (?:to|about|reminding)\b"
        ),
        _SUGGEST_TRAINING,
        "people_fix",
        keywords=_words("retrain retraining retrained re train training send write post"),
        action_items_only=True,
    ),
    Rule(
        "action_talk_to",
        _compile(
            r"\b(?:(?:talk|speak|chat) (?:to|with)|discuss (?:\w+ )?with) (?P<who>" + _WHO_RE + ")"
        ),
        _SUGGEST_PEOPLE_FIX,
        "people_fix",
        keywords=_words("talk speak chat discuss"),
        person_group="who",
        action_items_only=True,
    ),
    # --- A person as the subject of a failure ----------------------------------------------
    Rule(
        "person_fault",
        # "Luis's fault", "the on-call engineer's mistake"; the owner is found by looking
        # back, as for a subject. "he's"/"it's" are contractions, not possessives.
        _compile(
            r"['’](?<!\bhe.)(?<!\bshe.)(?<!\bit.)(?<!\bwho.)(?<!\bthat.)(?<!\bwhat.)"
            rf"(?<!\bthere.)s? (?:own )?{_FAULT_NOUNS}\b"
            r"(?! (?:budgets?|rates?|handling|messages?|codes?|logs?|counts?|class|type|path))"
        ),
        _SUGGEST_PERSON,
        "person_subject",
        keywords=_words(
            "fault mistake error blunder screw screwup oversight negligence carelessness typo"
        ),
        subjects=PEOPLE_OR_NAMES,
    ),
    Rule(
        "pronoun_fault",
        _compile(
            r"\b(?:his|her|their|your) (?:own )?(?:fault|mistake|blunder|screw-?up|negligence"
            r"|carelessness|incompetence|oversight)\b"
        ),
        _SUGGEST_PERSON,
        "person_subject",
        keywords=_words("his her their your"),
    ),
    Rule(
        "fault_of_person",
        _compile(
            r"\b(?:the )?(?:fault|blame) (?:of|lies with|is with|lies on|falls on|falls to"
            r"|rests with|sits with) (?P<who>" + _WHO_RE + r")\b(?!['’])(?: (?P<after>\w+))?"
        ),
        _SUGGEST_PERSON,
        "person_subject",
        keywords=_words("fault blame"),
        person_group="who",
    ),
    Rule(
        "blamed_person",
        _compile(r"\bblam(?:e|ed|ing|es) (?P<who>" + _WHO_RE + r")\b(?!['’])(?: (?P<after>\w+))?"),
        _SUGGEST_PERSON,
        "person_subject",
        keywords=_words("blame blamed blaming blames"),
        person_group="who",
        unless_sentence=_compile_context(r"\b(?:don't|do not|not|never|no need to|nobody)\b"),
    ),
    Rule(
        "because_of_person",
        _compile(
            r"\b(?:because of|due to) (?!them\b|it\b)(?P<who>" + _WHO_RE + r")\b(?!['’])"
            r"(?: (?P<after>\w+))?"
        ),
        _SUGGEST_PERSON,
        "person_subject",
        keywords=_words("because due"),
        person_group="who",
    ),
    Rule(
        "blame_person",
        _compile(
            r"\b(?:is|was|are|were) (?:entirely |partly |solely |squarely |completely |mostly )?"
            r"(?:at fault|to blame|responsible for (?:the|this|that) (?:outage|incident|failure"
            r"|breakage|data loss|downtime|mess))\b"
        ),
        _SUGGEST_PERSON,
        "person_subject",
        keywords=_words("fault blame responsible"),
        subjects=PEOPLE_OR_NAMES,
        unless_sentence=_compile_context(
            r"\b(?:nobody|no one|no-one|not|no single person|never)\b"
        ),
    ),
    Rule(
        "failure_by_person",
        _compile(
            r"\b(?:broken|caused|deleted|dropped|wiped|introduced|misconfigured|botched"
            r"|ignored|missed|overlooked|corrupted|mistake|error|blunder|oversight|mistakes"
            r"|errors)(?: made)? by (?P<who>" + _WHO_RE + r")\b(?!['’])"
            r"(?: (?P<after>\w+))?"
        ),
        _SUGGEST_PERSON,
        "person_subject",
        keywords=_words("by"),
        person_group="who",
    ),
    Rule(
        "person_failure",
        _compile(r"\b" + _FAILURE_VERBS + r"\b"),
        _SUGGEST_PERSON,
        "person_subject",
        keywords=_words(
            "broke caused deleted dropped wiped nuked trashed corrupted clobbered overwrote "
            "misconfigured mistyped misread misjudged misunderstood missed rushed"
        ),
        subjects=OTHER_PEOPLE_OR_NAMES,
        unless_sentence=_ANYONE_COULD,
    ),
    Rule(
        "person_failure_bad_object",
        _compile(r"\b" + _BAD_OBJECT),
        _SUGGEST_PERSON,
        "person_subject",
        keywords=_words(
            "bad broken wrong faulty buggy incorrect malformed invalid untested bogus botched"
        ),
        subjects=PEOPLE_OR_NAMES,
        unless_sentence=_ANYONE_COULD,
    ),
    Rule(
        "person_failure_phrase",
        _compile(
            r"\b(?:took|brought|knocked|taken) (?:down|out|over)\b"
            r"|\bintroduced (?:a|the|this|that) (?:\w+ )?(?:bug|regression|error|outage|problem)\b"
            r"|\bmade (?:a|an|the|this|that) (?:\w+ )?(?:mistake|error|typo|blunder|bad call"
            r"|wrong call)\b"
            r"|\bskipped (?:the |a |an )?(?:\w+ )?(?:check|checks|test|tests|review|step|steps"
            r"|runbook|canary|validation|checklist)\b|\bbypassed\b"
        ),
        _SUGGEST_PERSON,
        "person_subject",
        keywords=_words("took brought knocked taken introduced made skipped bypassed"),
        subjects=PEOPLE_OR_NAMES,
        unless_sentence=_ANYONE_COULD,
    ),
    Rule(
        "person_failure_adverb",
        _compile(
            r"\b(?:accidentally|mistakenly|inadvertently|unintentionally|carelessly|recklessly"
            r"|blindly|hastily) \w+"
        ),
        _SUGGEST_PERSON,
        "person_subject",
        keywords=_words(
            "accidentally mistakenly inadvertently unintentionally carelessly recklessly "
            "blindly hastily"
        ),
        subjects=PEOPLE_OR_NAMES,
        unless_sentence=_ANYONE_COULD,
    ),
    Rule(
        "wrong_target",
        _compile(r"\b(?:against|on|in|into|to|at|from) (?:the|a) wrong \w+"),
        _SUGGEST_PERSON,
        "person_subject",
        keywords=_words("wrong"),
        subjects=PEOPLE_OR_NAMES,
        subject_at_clause_start=True,
        unless_sentence=_ANYONE_COULD,
    ),
    Rule(
        "person_failure_strong",
        _compile(
            r"\b(?:ignored|ignoring|overlooked|botched|bungled|fumbled|flubbed|blundered|goofed"
            r"|panicked)\b"
            r"|\b(?:messed|screwed|fucked|mucked|cocked) (?:\w+ ){0,3}?up\b"
            r"|\bfat(?:-| )?fingered\b|\bdropped the ball\b|\bcut corners\b"
        ),
        _SUGGEST_PERSON,
        "person_subject",
        keywords=_words(
            "ignored ignoring overlooked botched bungled fumbled flubbed blundered goofed panicked "
            "messed screwed "
            "fucked mucked cocked fat fatfingered fingered ball corners"
        ),
        subjects=NOT_A_THING,
        unless_sentence=_ANYONE_COULD,
    ),
    # --- Counterfactuals about people ------------------------------------------------------
    Rule(
        "counterfactual_should",
        _compile(
            r"\b(?:should|ought to)(?:n't|n’t| not| never)?(?:'ve|’ve| have) "
            r"(?!been " + _PASSIVE_PARTICIPLE + r")(?:(?:\w+ly|just|really|at least) )?\w+"
            r"|\bought not to have \w+"
        ),
        _SUGGEST_COUNTERFACTUAL,
        "counterfactual",
        keywords=_words("should shouldn ought"),
        subjects=ONLY_PEOPLE,
    ),
    Rule(
        "counterfactual_could",
        _compile(
            r"\bcould(?:'ve|’ve| have) (?!been " + _PASSIVE_PARTICIPLE + r")"
            r"(?:(?:\w+ly|just|easily) )?\w+"
        ),
        _SUGGEST_COUNTERFACTUAL,
        "counterfactual",
        keywords=_words("could"),
        subjects=ONLY_PEOPLE,
        # "Anyone could have made this mistake" is the blameless point; "…if the alert had
        # fired" moves the counterfactual onto the system.
        unless_sentence=_compile_context(
            r"\b(?:if|anyone|anybody|any of us|any one of us|nobody|no one|no-one)\b"
            r"|\bany (?:engineer|developer|operator|person)\b"
        ),
    ),
    Rule(
        "counterfactual_would",
        _compile(r"\bwould(?:'ve|’ve| have) (?!been " + _PASSIVE_PARTICIPLE + r")\w+"),
        _SUGGEST_COUNTERFACTUAL,
        "counterfactual",
        keywords=_words("would"),
        subjects=ONLY_PEOPLE,
        unless_sentence=_compile_context(r"\b(?:if|unless|otherwise|without|had)\b"),
    ),
    Rule(
        "counterfactual_if_had",
        _compile(
            r"\b(?:if|had) (?P<who>" + _WHO_RE + r")(?: had)? (?:only |just |simply )?"
            r"(?:\w+ed|read|run|seen|known|done|taken|written|caught|gone|thought|kept|held)\b"
        ),
        _SUGGEST_COUNTERFACTUAL,
        "counterfactual",
        keywords=_words("if had"),
        person_group="who",
    ),
    Rule(
        "failed_to",
        _compile(r"\b(?:failed|fails|failing) (?:to|at) \w+"),
        _SUGGEST_OMISSION,
        "counterfactual",
        keywords=_words("failed fails failing"),
        subjects=ONLY_PEOPLE,
    ),
    Rule(
        "forgot_to",
        _compile(
            r"\b(?:forgot|forgets)\b(?: to| about)?|\bforgotten (?:to|about)\b"
            r"|\b(?:neglected|neglects|omitted) (?:to|the|a|an|his|her|their|our|its|this|that"
            r"|any)\b"
            r"|\b(?:didn't|did not|didn’t|didnt|never|couldn't be|could not be|not) "
            r"bother(?:ed)?(?: to)?\b|\b(?:nobody|no one|no-one) bothered(?: to)?\b"
        ),
        _SUGGEST_OMISSION,
        "counterfactual",
        keywords=_words("forgot forgets forgotten neglected neglects omitted bother bothered"),
        subjects=NOT_A_THING,
    ),
    Rule(
        "did_not_check",
        _compile(
            r"\b(?:didn't|did not|didn’t|didnt|never)(?: even)? "
            + _HUMAN_CHECKS
            + r"|\b(?:didn't|did not|didn’t|didnt|failed to|wasn't|weren't|not) (?:do|doing)"
            r" (?:his|her|their|your|my|our) jobs?\b"
        ),
        _SUGGEST_OMISSION,
        "counterfactual",
        keywords=_words("didn did didnt never failed wasn weren not"),
        subjects=ONLY_PEOPLE,
    ),
    Rule(
        "without_checking",
        _compile(
            r"\bwithout (?:even |first )?(?:checking|testing|reviewing|reading|verifying"
            r"|looking|thinking|asking|waiting|validating|consulting|double-checking)\b"
        ),
        _SUGGEST_OMISSION,
        "counterfactual",
        keywords=_words("without"),
        subjects=ONLY_PEOPLE,
        subject_at_clause_start=True,
    ),
    # --- Judging words ---------------------------------------------------------------------
    Rule(
        "judgement",
        _compile(
            r"\b(?:careless(?:ly|ness)?|sloppy(?! quorum)|sloppily|sloppiness"
            r"|negligen(?:t|tly|ce)"
            r"|lazy(?! (?:load\w*|eval\w*|init\w*|import\w*|iterat\w*|queue|val|static|propert\w*"
            r"|segment\w*|cach\w*|fetch\w*|consumer\w*|compil\w*|binding\w*|deletion\w*))"
            r"|lazily(?! (?:load\w*|eval\w*|init\w*|comput\w*|fetch\w*|creat\w*|import\w*))"
            r"|laziness|incompeten(?:t|ce|tly)|reckless(?:ly|ness)?|irresponsib(?:le|ly|ility)"
            r"|stupid(?:ity|ly)?|dumb(?! (?:pipes?|terminals?|clients?|proxy|proxies|switch))"
            r"|idiot(?:ic|s)?|foolish(?:ly|ness)?|clueless|inexcusable|unprofessional"
            r"|complacen(?:t|cy|ce)|thoughtless(?:ly)?|inattentive|inattention|half-assed"
            r"|cowboy|rookie mistake|amateur(?:ish)?|lapse in judge?ment|poor judge?ment"
            r"|bad judge?ment|error in judge?ment|asleep at the wheel"
            r"|(?:should|ought to)(?: have|'ve)? know(?:n)? better|inexperienced"
            r"|lack(?:ed)? (?:of )?(?:the )?(?:experience|skills?|competence|care|diligence"
            r"|rigou?r|judge?ment|attention to detail))\b"
        ),
        _SUGGEST_JUDGEMENT,
        "judgement",
        keywords=_words(
            """
            careless carelessly carelessness sloppy sloppily sloppiness negligent negligently
            negligence lazy lazily laziness incompetent incompetence incompetently reckless
            recklessly recklessness irresponsible irresponsibly irresponsibility stupid
            stupidity stupidly dumb idiot idiotic idiots foolish foolishly foolishness clueless
            inexcusable unprofessional complacent complacency complacence thoughtless
            thoughtlessly inattentive inattention half cowboy rookie amateur amateurish
            judgement judgment wheel better inexperienced lack lacked
            """
        ),
    ),
    Rule(
        "judgement_obviously",
        _compile(r"\bobvious(?:ly)?\b"),
        _SUGGEST_HINDSIGHT,
        "judgement",
        keywords=_words("obvious obviously"),
        unless_after=_compile_context(r"(?:\bnot|n't|n’t|\bless|\bnever|\bno|\bnon-)[^\S\n]*$"),
    ),
    Rule(
        "judgement_clearly",
        # Manner, not hindsight: "clearly labelled", "states clearly", "more clearly".
        _compile(
            r"\bclearly\b(?! (?:label+ed|marked|documented|visible|defined|written|stated|states"
            r"|state|says|said|communicated|displayed|shown|shows|separated|identified|explained"
            r"|explains|named|indicated|indicates|described|describes|readable|legible"
            r"|distinguishable|distinguished|worded|structured|formatted|specified|delineated"
            r"|highlighted|signposted|flagged|noted|outlined|presented|rendered|differentiated"
            r"|announced|audible|separate|distinct|different|laid out|set out|spelled out"
            r"|increased|decreased|spiked|dropped|rose|fell|jumped|climbed|grew|declined"
            r"|correlated|improved|degraded|recovered|shifted)\b)"
        ),
        _SUGGEST_HINDSIGHT,
        "judgement",
        keywords=_words("clearly"),
        unless_after=_compile_context(
            r"(?:\b(?:not|more|less|very|quite|fairly|sufficiently|most|n't)"
            r"|\b(?:explain|state|show|document|writ|wrote|label|mark|display|describ|defin"
            r"|specif|indicat|say|said|articulat|express|present|read|see|saw|seen|spell"
            r"|communicat|visibl|tell|told|hear|heard|distinguish|separat)\w*(?: \w+){0,3})"
            r"[^\S\n]*$"
        ),
    ),
    Rule(
        "judgement_simply",
        _compile(r"\bsimply\b(?! put\b)"),
        _SUGGEST_JUDGEMENT,
        "judgement",
        keywords=_words("simply"),
        subjects=ONLY_PEOPLE,
    ),
    Rule(
        "judgement_attention",
        _compile(
            r"\b(?:lacked|lack of|lacking|lost|loss of|no|zero|poor|without) situational "
            r"awareness\b"
            r"|\b(?:not|wasn't|weren't|wasnt|didn't|did not|stopped|failed to|without|never)"
            r" pay(?:ing)? (?:\w+ )?attention\b|\black of attention\b"
        ),
        _SUGGEST_ATTENTION,
        "judgement",
        keywords=_words("awareness attention"),
    ),
    Rule(
        "judgement_not_careful",
        _compile(
            r"\b(?:not|wasn't|weren't|isn't|aren't|never) (?:very |being )?careful(?: enough)?\b"
        ),
        _SUGGEST_JUDGEMENT,
        "judgement",
        keywords=_words("careful"),
        subjects=NOT_A_THING,
    ),
)


# --------------------------------------------------------------------------------------------
# Checking
# --------------------------------------------------------------------------------------------

# Maps every ASCII character that is not a letter to a space, for splitting into words.
_NON_LETTERS_TO_SPACE = str.maketrans(
    {chr(code): " " for code in range(128) if not chr(code).isalpha()}
)
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


def _top_level_branches(pattern: str) -> list[str]:
    """Split a regex source at the "|" that are outside any group or character class."""
    branches, depth, in_class, escaped, start = [], 0, False, False, 0
    for index, char in enumerate(pattern):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            branches.append(pattern[start:index])
            start = index + 1
    branches.append(pattern[start:])
    return branches


def _scanner(pattern: re.Pattern) -> tuple[re.Pattern, bool]:
    """A faster equivalent of `pattern` for searching, and whether it needs a word start.

    Python's regex engine skips quickly to a literal first character, but a leading \\b
    hides that literal and makes it try every position (about 30 times slower for
    "\\bfire"). For a pattern with one top-level branch the scanner drops the \\b and
    _check() tests the word boundary itself. Patterns with several branches keep it: there
    the \\b is what rejects mid-word positions cheaply.
    """
    branches = _top_level_branches(pattern.pattern)
    if len(branches) == 1 and branches[0].startswith(r"\b"):
        return re.compile(branches[0][2:], pattern.flags), True
    return pattern, False


_SCANNERS = tuple(_scanner(rule.pattern) for rule in RULES)


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char == "_"


def _sentence_around(line: str, start: int, end: int) -> str:
    """The sentence of `line` that contains line[start:end]."""
    sentence_start = 0
    for match in _SENTENCE_END.finditer(line, 0, start):
        sentence_start = match.end()
    following = _SENTENCE_END.search(line, end)
    return line[sentence_start : following.end() if following else len(line)]


def _lower_keeping_length(text: str) -> str:
    """Lower-case `text` without moving any offset.

    A few characters grow when lower-cased ("İ" becomes two); those are left as they are.
    """
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


@lru_cache(maxsize=64)
def _normalise_names(names: tuple[str, ...]) -> frozenset[str]:
    return frozenset(
        part.lower().lstrip("@") for name in names for part in name.split() if part.strip()
    )


def check(text: str, *, names: Iterable[str] = (), action_item: bool = False) -> list[Finding]:
    """Find blame language in `text` (a whole review, one field, or one sentence).

    `names` are known people's first names or usernames, so "jsmith broke prod" is caught.
    With `action_item=True` every line is treated as an action item; otherwise only lines
    that look like one ("Action item: …", "- [ ] …", a list under an "Action items"
    heading) get the stricter action-item rules.
    """
    return _check(text, names, action_item, fast=True)


def check_action_item(title: str) -> list[Finding]:
    """Check an action item's title: all rules, plus those for fixing people, not systems."""
    return check(title, action_item=True)


def _check(text: str, names: Iterable[str], action_item: bool, *, fast: bool) -> list[Finding]:
    """check(), optionally without its speed-ups (keywords, scanners) so tests can compare."""
    if not text:
        return []
    known_names = _normalise_names(tuple(names))
    lines = text.split("\n")
    masked_lines, is_action = _mask(lines, action_item)
    lowered = _lower_keeping_length("\n".join(masked_lines))
    line_starts = [0]
    for masked_line in masked_lines[:-1]:
        line_starts.append(line_starts[-1] + len(masked_line) + 1)
    lines_by_word = _lines_by_word(lowered) if fast else {}

    candidates: list[tuple[int, int, int, int, Rule]] = []  # (line, start, end, order, rule)
    for order, rule in enumerate(RULES):
        if fast:
            scanner, needs_word_start = _SCANNERS[order]
            line_numbers = _lines_with_keywords(rule, lines_by_word, len(lines))
        else:
            scanner, needs_word_start = rule.pattern, False
            line_numbers = range(len(lines))
        if rule.action_items_only:
            line_numbers = [number for number in line_numbers if is_action[number]]
        for first, last in _consecutive_runs(line_numbers):
            position = line_starts[first]
            run_end = line_starts[last] + len(masked_lines[last])
            while (match := scanner.search(lowered, position, run_end)) is not None:
                position = max(match.end(), match.start() + 1)
                if needs_word_start and match.start() and _is_word_char(lowered[match.start() - 1]):
                    position = match.start() + 1  # began mid-word; a real match may start later
                    continue
                index = bisect_right(line_starts, match.start()) - 1
                span = _accept(rule, match, masked_lines[index], line_starts[index], known_names)
                if span is not None:
                    candidates.append((index, span[0], span[1], order, rule))
    return _resolve_overlaps(candidates, lines)


def _lines_by_word(lowered: str) -> dict[str, list[int]]:
    """Which lines (0-based, ascending) contain each word."""
    index: dict[str, list[int]] = {}
    for number, line in enumerate(lowered.split("\n")):
        for word in set(line.translate(_NON_LETTERS_TO_SPACE).split()):
            index.setdefault(word, []).append(number)
    return index


def _lines_with_keywords(
    rule: Rule, lines_by_word: dict[str, list[int]], line_count: int
) -> Sequence[int]:
    """The lines worth scanning for `rule`: those containing one of its keywords."""
    if not rule.keywords:
        return range(line_count)
    hits = [lines_by_word[word] for word in rule.keywords if word in lines_by_word]
    if len(hits) <= 1:
        return hits[0] if hits else ()
    return sorted(set().union(*hits))


def _consecutive_runs(numbers: Iterable[int]) -> list[tuple[int, int]]:
    """[1, 2, 3, 7, 8] -> [(1, 3), (7, 8)]: scan neighbouring lines in one regex call."""
    runs: list[tuple[int, int]] = []
    for number in numbers:
        if runs and runs[-1][1] == number - 1:
            runs[-1] = (runs[-1][0], number)
        else:
            runs.append((number, number))
    return runs


def _accept(
    rule: Rule, match: re.Match, line: str, line_start: int, names: frozenset[str]
) -> tuple[int, int] | None:
    """Apply a rule's extra conditions; return the span to report, or None to drop it.

    `line` is the masked line in its original case (names need their capitals).
    """
    start, end = match.start() - line_start, match.end() - line_start
    following = ""
    if "after" in rule.pattern.groupindex and match.group("after") is not None:
        # The trailing <after> word is only read to judge <who> ("the on-call rotation").
        following = line[match.start("after") - line_start : match.end("after") - line_start]
        end = len(line[: match.start("after") - line_start].rstrip())
    if rule.person_group is not None:
        group_start, group_end = match.span(rule.person_group)
        if group_start < 0:
            return None
        who = line[group_start - line_start : group_end - line_start]
        if not _names_a_person(who, following, names):
            return None
    if rule.unless_after is not None and rule.unless_after.search(line[max(0, start - 60) : start]):
        return None
    if rule.unless_sentence is not None and rule.unless_sentence.search(
        _sentence_around(line, start, end)
    ):
        return None
    if rule.subjects:
        kind, subject_start = _subject_of(
            line, start, names, from_clause_start=rule.subject_at_clause_start
        )
        if kind not in rule.subjects:
            return None
        if subject_start is not None and _MASK not in line[subject_start:start]:
            start = subject_start
    if _MASK in line[start:end]:
        return None
    return start, end


def _resolve_overlaps(
    candidates: list[tuple[int, int, int, int, Rule]], lines: list[str]
) -> list[Finding]:
    """Keep the longest (then the earliest rule's) of any overlapping spans on a line."""
    candidates.sort(key=lambda c: (-(c[2] - c[1]), c[3], c[0], c[1]))
    kept: dict[int, list[tuple[int, int]]] = {}
    findings: list[Finding] = []
    for index, start, end, _, rule in candidates:
        taken = kept.setdefault(index, [])
        if any(start < other_end and other_start < end for other_start, other_end in taken):
            continue
        taken.append((start, end))
        findings.append(
            Finding(index + 1, start, end, lines[index][start:end], rule.name, rule.suggestion)
        )
    findings.sort(key=lambda f: (f.line, f.start))
    return findings
