"""The one place where author-written Markdown becomes HTML.

Markdown alone passes raw HTML straight through, so every rendering is followed by bleach with
an explicit allow-list. Called when a model is saved, never while serving a GET.
"""

import threading

import bleach
import bleach.linkifier
import markdown as markdown_lib

ALLOWED_TAGS = frozenset(
    {
        "p", "br", "hr", "strong", "em", "b", "i", "code", "pre", "blockquote",
        "ul", "ol", "li", "a", "h1", "h2", "h3", "h4", "h5", "h6",
        "table", "thead", "tbody", "tr", "th", "td", "del", "sup", "sub", "abbr",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": ["href", "title"], "abbr": ["title"], "th": ["align"], "td": ["align"]}
ALLOWED_PROTOCOLS = frozenset({"http", "https", "mailto"})

# bleach's Cleaner and Linker keep parser state, so threads (gunicorn --threads, concurrent
# autosaves) must not share one: each thread gets its own.
_local = threading.local()


def _tools():
    if not hasattr(_local, "cleaner"):
        _local.cleaner = bleach.Cleaner(
            tags=ALLOWED_TAGS,
            attributes=ALLOWED_ATTRIBUTES,
            protocols=ALLOWED_PROTOCOLS,
            strip=True,
            strip_comments=True,
        )
        _local.linker = bleach.linkifier.Linker(
            callbacks=[_add_link_rel], skip_tags={"pre", "code"}
        )
    return _local.cleaner, _local.linker


def _add_link_rel(attrs, new=False):
    href_key = (None, "href")
    if href_key in attrs:
        attrs[(None, "rel")] = "nofollow noopener noreferrer"
    return attrs


def render_markdown(text: str | None) -> str:
    """Markdown source → sanitised HTML that is safe to mark safe in a template."""
    if not text or not text.strip():
        return ""
    html = markdown_lib.markdown(
        text, extensions=["extra", "sane_lists"], output_format="html", tab_length=4
    )
    cleaner, linker = _tools()
    cleaned = cleaner.clean(html)
    # Linkify after cleaning: bare URLs become links and authors cannot choose rel.
    return linker.linkify(cleaned)
