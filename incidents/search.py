"""Full-text search over incidents, the same on SQLite (FTS5) and PostgreSQL (tsvector + GIN).

One entry point, `search_incidents(queryset, text)`, picks the backend by database vendor and
returns the same shape everywhere: incidents ranked best first, each with `search_rank`,
`search_title` (the title with hits marked) and `snippets` (up to two highlighted excerpts).

Query syntax, parsed here once for both backends so they cannot drift apart:
- words: every word must appear somewhere in the write-up (title, summary, impact, narrative,
  lessons, timeline, factors or action items); words are stemmed ("expired" finds "expire");
- "a phrase": these words next to each other, in one field;
- -word or -"a phrase": leave out write-ups that contain it;
- word*: a prefix ("certif*").
Anything else — unbalanced quotes, FTS operators (NEAR, AND, OR, ^, :), 5,000 characters — is
read as plain words. The user's text never reaches SQL except as a bound parameter or as
alphanumeric tokens quoted inside an FTS5 string.

The index itself (tables and triggers) lives in `incidents.search_models`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Q
from django.db.models.expressions import RawSQL
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from .search_models import COLUMNS, FTS_TABLE, LABELS, PG_TABLE, WEIGHTS

MAX_QUERY_CHARS = 500
MAX_TERMS = 12
MAX_TOKENS_PER_TERM = 8
MAX_TOKEN_CHARS = 64

# PostgreSQL's English stop words (tsearch_data/english.stop). Dropping them from single-word
# terms on both backends makes "the" mean the same thing on SQLite as on PostgreSQL.
_STOP_WORDS = """i me my myself we our ours ourselves you your yours yourself yourselves he him his himself
    she her hers herself it its itself they them their theirs themselves what which who whom this
    that these those am is are was were be been being have has had having do does did doing a an
    the and but if or because as until while of at by for with about against between into through
    during before after above below to from up down in out on off over under again further then
    once here there when where why how all any both each few more most other some such no nor not
    only own same so than too very s t can will just don should now"""
STOP_WORDS = frozenset(_STOP_WORDS.split())

_PART = re.compile(r'(-?)"([^"]*)"|(-?)(\S+)')
_TOKEN = re.compile(r"[^\W_]+")

# Private-use characters mark hits in the database's output; the text is escaped first and only
# then are the markers turned into <mark> elements, so an author's text can never become markup.
HIT_OPEN, HIT_CLOSE, FRAGMENT = "\ue000", "\ue001", "\ue002"
_HIT = re.compile(f"{HIT_OPEN}(.*?){HIT_CLOSE}", re.S)
_MARKDOWN_NOISE = re.compile(r"\*\*|__|`+|^#+\s*|^>\s*", re.M)
_MARKDOWN_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Term:
    """One word or phrase of a query: its tokens, lower-cased; `prefix` marks "word*"."""

    tokens: tuple[str, ...]
    prefix: bool = False

    def __str__(self):
        text = " ".join(self.tokens) + ("*" if self.prefix else "")
        return f'"{text}"' if len(self.tokens) > 1 else text

    def fts5(self) -> str:
        # Tokens are alphanumeric only, so they can sit inside an FTS5 string as they are;
        # quoting every token makes NEAR, AND, OR and NOT plain words.
        return '"' + " ".join(self.tokens) + '"' + (" *" if self.prefix else "")


@dataclass(frozen=True)
class ParsedQuery:
    include: tuple[Term, ...] = ()
    exclude: tuple[Term, ...] = ()

    def __bool__(self):
        return bool(self.include or self.exclude)

    def __str__(self):
        return " ".join([*map(str, self.include), *(f"-{term}" for term in self.exclude)])

    @property
    def words(self) -> list[str]:
        """The searched-for tokens, for messages and highlighting."""
        return [token for term in self.include for token in term.tokens]


def parse_query(text: str | None) -> ParsedQuery:
    """Read what a person typed into words, phrases, exclusions and prefixes. Never raises."""
    include: list[Term] = []
    exclude: list[Term] = []
    seen: set[Term] = set()
    for match in _PART.finditer((text or "")[:MAX_QUERY_CHARS]):
        if match.group(2) is not None:
            negative, raw, is_phrase = bool(match.group(1)), match.group(2), True
        else:
            negative, raw, is_phrase = bool(match.group(3)), match.group(4), False
        tokens = tuple(t[:MAX_TOKEN_CHARS] for t in _TOKEN.findall(raw.lower()))
        tokens = tokens[:MAX_TOKENS_PER_TERM]
        if not tokens:
            continue
        prefix = not is_phrase and raw.endswith("*") and len(tokens[-1]) >= 2
        if len(tokens) == 1 and not prefix and tokens[0] in STOP_WORDS:
            continue
        term = Term(tokens, prefix)
        if term in seen:
            continue
        seen.add(term)
        (exclude if negative else include).append(term)
        if len(include) + len(exclude) >= MAX_TERMS:
            break
    return ParsedQuery(tuple(include), tuple(exclude))


def _rough_stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def keywords(text: str | None, limit: int = 8) -> ParsedQuery:
    """Distinctive words of a free text (a title, a summary), as an any-of query for finding
    similar write-ups: no stop words, no short words, one form of each word, longest first."""
    words: dict[str, str] = {}
    for token in _TOKEN.findall((text or "")[:2000].lower()):
        if len(token) >= 4 and token not in STOP_WORDS and not token.isdigit():
            words.setdefault(_rough_stem(token), token)
    chosen = sorted(words.values(), key=len, reverse=True)[:limit]
    return ParsedQuery(tuple(Term((word,)) for word in chosen))


def highlight(text: str) -> SafeString:
    """Escape a database excerpt and turn its hit markers into <mark> elements."""
    text = _MARKDOWN_LINK.sub(r"\1", text)
    text = _SPACE.sub(" ", _MARKDOWN_NOISE.sub("", text)).strip()
    html = _HIT.sub(r"<mark>\1</mark>", str(escape(text)))
    for marker in (HIT_OPEN, HIT_CLOSE, FRAGMENT):
        html = html.replace(marker, "")
    return mark_safe(html)  # escaped above; the only markup is ours


@dataclass(frozen=True)
class Excerpt:
    """Where a hit is (a column label such as "Timeline") and the text around it, marked."""

    label: str
    html: SafeString


# Excerpts come from every column but the title (results show the title, marked, anyway).
EXCERPT_COLUMNS = COLUMNS[1:]


# --- Backends -----------------------------------------------------------------------------


def _subquery(queryset) -> tuple[str, tuple]:
    sql, params = queryset.order_by().values("pk").query.sql_with_params()
    return sql, tuple(params)


class SQLiteBackend:
    """FTS5, one index row per piece of text; rows are grouped by incident (rowid >> 32)."""

    # Ranking reads every row holding any of the words; the candidates enforce all of them.
    rank_within_candidates = True

    weights = ", ".join(str(WEIGHTS[column]) for column in COLUMNS)

    def matches(self, query: ParsedQuery) -> tuple[str, tuple]:
        """SQL for the ids of incidents satisfying the whole query (all terms, no exclusion).
        Terms may sit in different rows of one incident, hence a set operation per term."""
        parts = [f"SELECT rowid >> 32 FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s"]
        sql = " INTERSECT ".join(parts * len(query.include))
        if query.exclude:
            sql += " EXCEPT " + " EXCEPT ".join(parts * len(query.exclude))
        return sql, tuple(term.fts5() for term in (*query.include, *query.exclude))

    def excluded(self, query: ParsedQuery) -> tuple[str, tuple]:
        sql = " UNION ".join(
            [f"SELECT rowid >> 32 FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s"] * len(query.exclude)
        )
        return sql, tuple(term.fts5() for term in query.exclude)

    def _any(self, query: ParsedQuery) -> str:
        return " OR ".join(term.fts5() for term in query.include)

    def ranked(self, query, candidates_sql, candidates_params, limit, offset):
        sql = f"""
            WITH hits AS MATERIALIZED (
                SELECT rowid >> 32 AS incident_id, bm25({FTS_TABLE}, {self.weights}) AS score
                FROM {FTS_TABLE}
                WHERE {FTS_TABLE} MATCH %s AND (rowid >> 32) IN ({candidates_sql})
            )
            SELECT h.incident_id, -sum(h.score) AS rank,
                   (SELECT started_at FROM incidents_incident WHERE id = h.incident_id) AS started
            FROM hits h
            GROUP BY h.incident_id
            ORDER BY rank DESC, started DESC, h.incident_id DESC
            LIMIT %s OFFSET %s"""
        with connection.cursor() as cursor:
            cursor.execute(sql, (self._any(query), *candidates_params, limit, offset))
            return [(row[0], row[1]) for row in cursor.fetchall()]

    def excerpts(self, query, ids):
        """{incident id: (title with hits marked or None, [(label, excerpt)], best first)}."""
        if not ids:
            return {}
        snippets = ", ".join(
            f"snippet({FTS_TABLE}, {COLUMNS.index(column)}, %s, %s, '…', 14)"
            for column in EXCERPT_COLUMNS
        )
        one = f"""SELECT rowid >> 32, bm25({FTS_TABLE}, {self.weights}),
                         highlight({FTS_TABLE}, 0, %s, %s), {snippets}
                  FROM {FTS_TABLE}
                  WHERE {FTS_TABLE} MATCH %s AND rowid BETWEEN %s AND %s"""
        sql = " UNION ALL ".join([one] * len(ids))
        params: list = []
        for pk in ids:
            params += [HIT_OPEN, HIT_CLOSE] * (1 + len(EXCERPT_COLUMNS))
            params += [self._any(query), pk << 32, (pk << 32) | 0xFFFFFFFF]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        found: dict[int, tuple] = {pk: (None, []) for pk in ids}
        for pk, _score, title, *columns in sorted(rows, key=lambda row: row[1]):
            marked_title, excerpts = found[pk]
            if HIT_OPEN in (title or ""):
                marked_title = title
            excerpts += [
                (LABELS[column], text)
                for column, text in zip(EXCERPT_COLUMNS, columns, strict=True)
                if HIT_OPEN in (text or "")
            ]
            found[pk] = (marked_title, excerpts)
        return found


class PostgreSQLBackend:
    """One weighted tsvector per incident (title A; summary, impact, lessons B; narrative and
    factors C; action items and timeline D), ranked with ts_rank."""

    rank_within_candidates = False  # the ranking query's @@ already applies the whole query

    def tsquery(self, query: ParsedQuery, connector: str = "&&") -> tuple[str, tuple]:
        parts, params = [], []
        for negative, term in [(False, t) for t in query.include] + [
            (True, t) for t in query.exclude
        ]:
            if term.prefix:
                # Tokens are alphanumeric, so this to_tsquery text has no operators but ours.
                sql = "to_tsquery('english', %s)"
                params.append(" <-> ".join(term.tokens) + ":*")
            elif len(term.tokens) > 1:
                sql = "phraseto_tsquery('english', %s)"
                params.append(" ".join(term.tokens))
            else:
                sql = "plainto_tsquery('english', %s)"
                params.append(term.tokens[0])
            parts.append(f"!!{sql}" if negative else sql)
        return "(" + f" {connector} ".join(parts) + ")", tuple(params)

    def matches(self, query: ParsedQuery) -> tuple[str, tuple]:
        tsquery, params = self.tsquery(query)
        return f"SELECT incident_id FROM {PG_TABLE} WHERE document @@ {tsquery}", params

    def excluded(self, query: ParsedQuery) -> tuple[str, tuple]:
        return self.matches(ParsedQuery(include=query.exclude))

    def ranked(self, query, candidates_sql, candidates_params, limit, offset):
        tsquery, params = self.tsquery(query)
        sql = f"""
            SELECT s.incident_id, ts_rank(s.document, q.query) AS rank
            FROM {PG_TABLE} s
            CROSS JOIN (SELECT {tsquery} AS query) q
            JOIN incidents_incident i ON i.id = s.incident_id
            WHERE s.document @@ q.query AND s.incident_id IN ({candidates_sql})
            ORDER BY rank DESC, i.started_at DESC NULLS LAST, i.id DESC
            LIMIT %s OFFSET %s"""
        with connection.cursor() as cursor:
            cursor.execute(sql, (*params, *candidates_params, limit, offset))
            return [(row[0], row[1]) for row in cursor.fetchall()]

    def excerpts(self, query, ids):
        if not ids:
            return {}
        tsquery, params = self.tsquery(ParsedQuery(include=query.include))
        headlines = ", ".join(
            f"ts_headline('english', s.{column}, q.query, %s)" for column in EXCERPT_COLUMNS
        )
        sql = f"""
            SELECT s.incident_id, ts_headline('english', s.title, q.query, %s), {headlines}
            FROM {PG_TABLE} s CROSS JOIN (SELECT {tsquery} AS query) q
            WHERE s.incident_id = ANY(%s)"""
        marks = f"StartSel={HIT_OPEN}, StopSel={HIT_CLOSE}"
        title_options = f"HighlightAll=true, {marks}"
        options = f"MaxFragments=1, MaxWords=18, MinWords=8, FragmentDelimiter={FRAGMENT}, {marks}"
        with connection.cursor() as cursor:
            cursor.execute(
                sql, (title_options, *[options] * len(EXCERPT_COLUMNS), *params, list(ids))
            )
            rows = cursor.fetchall()
        found: dict[int, tuple] = {pk: (None, []) for pk in ids}
        for pk, title, *columns in rows:
            excerpts = [
                (LABELS[column], f"…{text.strip()}…")
                for column, text in zip(EXCERPT_COLUMNS, columns, strict=True)
                if HIT_OPEN in (text or "")
            ]
            found[pk] = (title if HIT_OPEN in (title or "") else None, excerpts)
        return found


class LikeBackend:
    """Other databases: no index, no ranking, no excerpts — but the same answers."""

    def filter(self, queryset, query: ParsedQuery):
        fields = ("title", "summary", "impact", "narrative", "lessons", "timeline_entries__text",
                  "factors__description", "action_items__title")  # fmt: skip

        def has(term):
            text = " ".join(term.tokens)
            ids = queryset.model.objects.filter(
                Q.create([(f"{name}__icontains", text) for name in fields], connector=Q.OR)
            ).values("pk")
            return Q(pk__in=ids)

        for term in query.include:
            queryset = queryset.filter(has(term))
        for term in query.exclude:
            queryset = queryset.exclude(has(term))
        return queryset


def backend():
    if connection.vendor == "sqlite":
        return SQLiteBackend()
    if connection.vendor == "postgresql":
        return PostgreSQLBackend()
    return LikeBackend()


# --- The one entry point ------------------------------------------------------------------


@dataclass
class RankedSearch(Sequence):
    """Search results for a Paginator: counting and slicing each cost one query, and only the
    page being shown is ranked, fetched and given excerpts."""

    queryset: object
    query: ParsedQuery
    engine: object
    _count: int | None = field(default=None, init=False)

    def _candidates(self):
        sql, params = self.engine.matches(self.query)
        return self.queryset.filter(pk__in=RawSQL(sql, params))

    def count(self) -> int:
        if self._count is None:
            self._count = self._candidates().count()
        return self._count

    def __len__(self):
        return self.count()

    def __getitem__(self, index):
        if not isinstance(index, slice):
            return self[index : index + 1][0]
        start, stop = index.start or 0, index.stop if index.stop is not None else self.count()
        if stop <= start:
            return []
        within = self._candidates() if self.engine.rank_within_candidates else self.queryset
        sql, params = _subquery(within)
        ranked = self.engine.ranked(self.query, sql, params, stop - start, start)
        ids = [pk for pk, _ in ranked]
        incidents = {incident.pk: incident for incident in self.queryset.filter(pk__in=ids)}
        excerpts = self.engine.excerpts(self.query, ids)
        results = []
        for pk, rank in ranked:
            incident = incidents.get(pk)
            if incident is None:
                continue
            title, snippets = excerpts.get(pk, (None, []))
            incident.search_rank = float(rank)
            incident.search_title = highlight(title) if title else None
            incident.snippets = [Excerpt(label, highlight(text)) for label, text in snippets[:2]]
            results.append(incident)
        return results


def search_incidents(queryset, text: str | ParsedQuery):
    """Incidents of `queryset` that match `text`, best first.

    Returns something a Paginator can page through: a RankedSearch (ranked, with excerpts) when
    the query has words to look for; the queryset itself, newest first, when it is empty; the
    queryset minus the excluded incidents when it only excludes.
    """
    query = text if isinstance(text, ParsedQuery) else parse_query(text)
    if not query:
        return queryset
    engine = backend()
    if isinstance(engine, LikeBackend):
        return engine.filter(queryset, query)
    if not query.include:
        sql, params = engine.excluded(query)
        return queryset.exclude(pk__in=RawSQL(sql, params))
    return RankedSearch(queryset, query, engine)


# Similarity looks at what a write-up is about — title, summary, impact, lessons — not at every
# word of its timeline (SQLite: an FTS5 column filter; PostgreSQL: weights A and B).
CORE_COLUMNS = ("title", "summary", "impact", "lessons")
MAX_SIMILARITY_TERMS = 8


def _core_fts5(terms) -> str:
    return "{" + " ".join(CORE_COLUMNS) + "} : (" + " OR ".join(t.fts5() for t in terms) + ")"


def _core_tsquery(terms) -> str:
    # Tokens are alphanumeric (see parse_query/keywords), so this text holds no operator but ours.
    return " | ".join(" <-> ".join(f"{token}:AB" for token in term.tokens) for term in terms)


def any_of(query: ParsedQuery, queryset, limit: int = 50) -> list[tuple[int, float]]:
    """The `limit` incidents of `queryset` whose title, summary, impact or lessons share the most
    of `query`'s words (any of them, not all), best first, as (id, rank): similar incidents."""
    terms = query.include[:MAX_SIMILARITY_TERMS]
    if not terms:
        return []
    engine = backend()
    if isinstance(engine, LikeBackend):
        ids = engine.filter(queryset, ParsedQuery(include=terms[:1])).values_list("pk", flat=True)
        return [(pk, 1.0) for pk in ids[:limit]]
    sql, params = _subquery(queryset)
    if isinstance(engine, SQLiteBackend):
        # Only an incident's own row has these columns: one row per incident, no grouping.
        ranked_sql = f"""
            SELECT rowid >> 32, -bm25({FTS_TABLE}, {engine.weights}) AS rank
            FROM {FTS_TABLE}
            WHERE {FTS_TABLE} MATCH %s AND (rowid >> 32) IN ({sql})
            ORDER BY rank DESC, rowid DESC LIMIT %s"""
        args = (_core_fts5(terms), *params, limit)
    else:
        ranked_sql = f"""
            SELECT s.incident_id, ts_rank(s.document, q.query) AS rank
            FROM {PG_TABLE} s CROSS JOIN (SELECT to_tsquery('english', %s) AS query) q
            WHERE s.document @@ q.query AND s.incident_id IN ({sql})
            ORDER BY rank DESC, s.incident_id DESC LIMIT %s"""
        args = (_core_tsquery(terms), *params, limit)
    with connection.cursor() as cursor:
        cursor.execute(ranked_sql, args)
        return [(row[0], float(row[1])) for row in cursor.fetchall()]


def terms_in(ids, query: ParsedQuery) -> dict[int, list[Term]]:
    """Which of `query`'s words each of the incidents `ids` has in its title, summary, impact or
    lessons (for "why it matched")."""
    ids = list(ids)
    terms = list(query.include[:MAX_SIMILARITY_TERMS])
    found: dict[int, list[Term]] = {pk: [] for pk in ids}
    if not ids or not terms:
        return found
    placeholders = ", ".join(["%s"] * len(ids))
    if connection.vendor == "sqlite":
        one = (
            f"SELECT rowid >> 32, %s FROM {FTS_TABLE} "
            f"WHERE {FTS_TABLE} MATCH %s AND rowid IN ({placeholders})"
        )
        params = [
            value
            for n, term in enumerate(terms)
            for value in (n, _core_fts5([term]), *[pk << 32 for pk in ids])
        ]
    elif connection.vendor == "postgresql":
        one = (
            f"SELECT incident_id, %s FROM {PG_TABLE} "
            f"WHERE document @@ to_tsquery('english', %s) AND incident_id IN ({placeholders})"
        )
        params = [
            value for n, term in enumerate(terms) for value in (n, _core_tsquery([term]), *ids)
        ]
    else:
        return found
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join([one] * len(terms)), params)
        for pk, n in cursor.fetchall():
            found[pk].append(terms[n])
    for pk in found:
        found[pk].sort(key=terms.index)
    return found
