import html5lib
import pytest

from incidents.markdown import render_markdown

# Payloads of our own; each must come out with nothing that can run.
XSS_PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](  javascript:alert(1))",
    "[click](java\tscript:alert(1))",
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![img](javascript:alert(1))",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)></style></mglyph></table></mtext></math>",
    '<iframe src="https://evil.example"></iframe>',
    '<object data="x.swf"></object>',
    '<embed src="x.swf">',
    '<form action="https://evil.example"><button>go</button></form>',
    '<div style="background:url(javascript:alert(1))">x</div>',
    '<p style="color:red">styled</p>',
    '<div hx-get="/admin/" hx-trigger="load">x</div>',
    '<div hx-on:click="alert(1)">x</div>',
    '<div data-hx-get="/x">x</div>',
    '<span data-foo="1" onclick="alert(1)">x</span>',
    '<a href="https://ok.example" onmouseover="alert(1)">ok</a>',
    "<details open ontoggle=alert(1)>",
    "<body onload=alert(1)>",
    '<input autofocus onfocus="alert(1)">',
    '<video><source onerror="alert(1)"></video>',
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "<<script>script>alert(1)<</script>/script>",
    "<scr<script>ipt>alert(1)</script>",
    '<a href="&#106;avascript:alert(1)">x</a>',
    '<a href="jav&#x09;ascript:alert(1)">x</a>',
    '<base href="https://evil.example/">',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<link rel="stylesheet" href="https://evil.example/x.css">',
    "<style>body{display:none}</style>",
    "```\n<script>alert(1)</script>\n```",
    "`<img src=x onerror=alert(1)>`",
    '[x](https://ok.example "title" onclick=alert(1))',
    "<template><script>alert(1)</script></template>",
    "<isindex action=javascript:alert(1) type=image>",
    "<textarea><script>alert(1)</script></textarea>",
    "{{ request.user.password }} {% debug %}",
    '=HYPERLINK("https://evil.example","x")',
    "<a href='data:image/svg+xml,<svg onload=alert(1)>'>x</a>",
    '<img srcset="x 1x, javascript:alert(1) 2x">',
    '<a href="  javascript:alert(1)">x</a>',
    '<a href="mailto:x@example.com" target="_blank">mail</a>',
    '<table><tr><td background="javascript:alert(1)">x</td></tr></table>',
]

SAFE_SCHEMES = ("http://", "https://", "mailto:", "#")


def assert_nothing_runs(html: str):
    fragment = html5lib.parseFragment(html, namespaceHTMLElements=False)
    for element in fragment.iter():
        if not isinstance(element.tag, str):
            continue
        assert element.tag not in {"script", "iframe", "object", "embed", "svg", "math", "style",
                                    "form", "input", "base", "meta", "link", "template", "img"}  # fmt: skip
        for name, value in element.attrib.items():
            assert not name.startswith("on"), name
            assert not name.startswith(("hx-", "data-")), name
            assert name != "style"
            if name in {"href", "src", "action", "srcset", "background"}:
                assert value.strip().lower().startswith(SAFE_SCHEMES), value


def test_payload_corpus_is_large_enough():
    assert len(XSS_PAYLOADS) >= 50


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_payload_is_neutralised(payload):
    assert_nothing_runs(render_markdown(payload))
    assert_nothing_runs(render_markdown(f"Some text before.\n\n{payload}\n\nAnd after."))


def test_ordinary_markdown_survives():
    html = render_markdown(
        "# Heading\n\n**bold** and _italic_, `code`, [link](https://example.com)\n\n"
        "- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n> quote"
    )
    for fragment in ("<h1>Heading</h1>", "<strong>bold</strong>", "<em>italic</em>",
                     "<code>code</code>", 'href="https://example.com"', "<li>one</li>",
                     "<table>", "<blockquote>"):  # fmt: skip
        assert fragment in html


def test_links_get_a_safe_rel():
    html = render_markdown("[x](https://example.com)")
    assert 'rel="nofollow noopener noreferrer"' in html


def test_mailto_links_are_kept():
    assert 'href="mailto:sre@example.com"' in render_markdown("[mail](mailto:sre@example.com)")


def test_empty_text_renders_empty():
    assert render_markdown("") == ""
    assert render_markdown(None) == ""
    assert render_markdown("   \n ") == ""


def test_template_syntax_is_not_evaluated():
    """Author text is data: Django template syntax comes out literally."""
    assert "{{ request.user.password }}" in render_markdown("{{ request.user.password }}")
