import json
from typing import Any

import pytest
from callbacks.templates import (
    Context,
    HeaderInjection,
    TemplateError,
    compile_template,
    render,
)

VARS: dict[str, Any] = {
    "s": "hello",
    "quote": 'say "hi"',
    "backslash": "a\\b",
    "newline": "line1\nline2",
    "hindi": "नमस्ते",
    "emoji": "ok 👍",
    "markup": "<b>Tom & Jerry's</b>",
    "empty": "",
    "n": 3,
    "f": 1.5,
    "yes": True,
    "no": False,
    "null": None,
    "obj": {"latitude": 12.97, "name": 'Cubbon "Park"'},
    "items": [{"name": "Asha", "phones": ["+919876543210"]}],
    "space": "a b/c?d=e&f",
}


@pytest.mark.parametrize(
    ("source", "context", "expected"),
    [
        ("{{s}}", "text", "hello"),
        ("{{ s }}", "text", "hello"),
        ("{{  obj.name  }}", "text", 'Cubbon "Park"'),
        ("{{items[0].name}}", "text", "Asha"),
        ("{{items[0].phones[0]}}", "text", "+919876543210"),
        ("{{items[5].name}}", "text", ""),
        ("{{obj.missing}}", "text", ""),
        ("{{s.deeper}}", "text", ""),
        ("{{unknown}}", "text", ""),
        ("{{null}}", "text", ""),
        ("{{yes}}/{{no}}", "text", "true/false"),
        ("{{n}} {{f}}", "text", "3 1.5"),
        ("{{obj}}", "text", '{"latitude":12.97,"name":"Cubbon \\"Park\\""}'),
        ("{{hindi}} {{emoji}}", "text", "नमस्ते ok 👍"),
        ("{{newline}}", "text", "line1\nline2"),
        ("{{markup}}", "form", "<b>Tom & Jerry's</b>"),
        ("<m>{{markup}}</m>", "xml", "<m>&lt;b&gt;Tom &amp; Jerry&#x27;s&lt;/b&gt;</m>"),
        ('<a title="{{quote}}">', "html", '<a title="say &quot;hi&quot;">'),
        ("<m>{{hindi}}</m>", "xml", "<m>नमस्ते</m>"),
        ("<m>{{yes}}</m>", "xml", "<m>true</m>"),
        ("/p/{{space}}", "url_path", "/p/a%20b%2Fc%3Fd%3De%26f"),
        ("{{space}}", "url_query", "a%20b%2Fc%3Fd%3De%26f"),
        ("{{hindi}}", "url_query", "%E0%A4%A8%E0%A4%AE%E0%A4%B8%E0%A5%8D%E0%A4%A4%E0%A5%87"),
        ("{{yes}}", "url_query", "true"),
        ("{{empty}}", "url_query", ""),
        ("Bearer {{s}}", "header", "Bearer hello"),
        ("{{hindi}}", "header", "नमस्ते"),
    ],
)
def test_render(source: str, context: Context, expected: str) -> None:
    assert render(source, VARS, context) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # inside a string literal: escaped string content, no quotes added
        ('{"a": "{{quote}}"}', {"a": 'say "hi"'}),
        ('{"a": "{{backslash}}"}', {"a": "a\\b"}),
        ('{"a": "{{newline}}"}', {"a": "line1\nline2"}),
        ('{"a": "{{hindi}} {{emoji}}"}', {"a": "नमस्ते ok 👍"}),
        ('{"a": "{{markup}}"}', {"a": "<b>Tom & Jerry's</b>"}),
        ('{"a": "x{{empty}}y"}', {"a": "xy"}),
        ('{"a": "{{missing}}"}', {"a": ""}),
        ('{"a": "{{n}}", "b": "{{yes}}"}', {"a": "3", "b": "true"}),
        ('{"a": "{{obj}}"}', {"a": '{"latitude":12.97,"name":"Cubbon \\"Park\\""}'}),
        # standing alone: a JSON literal
        ('{"a": {{s}}}', {"a": "hello"}),
        ('{"a": {{quote}}}', {"a": 'say "hi"'}),
        ('{"a": {{n}}, "b": {{f}}}', {"a": 3, "b": 1.5}),
        ('{"a": {{yes}}, "b": {{no}}}', {"a": True, "b": False}),
        ('{"a": {{missing}}, "b": {{null}}}', {"a": None, "b": None}),
        ('{"a": {{obj}}}', {"a": VARS["obj"]}),
        ('{"a": {{items}}}', {"a": VARS["items"]}),
        ('{"a": {{ items[0].phones }}}', {"a": ["+919876543210"]}),
        ("[{{s}}, {{n}}]", ["hello", 3]),
        # quote state survives escaped quotes and backslashes in the literal text
        ('{"a": "x\\"{{s}}", "b": {{n}}}', {"a": 'x"hello', "b": 3}),
        ('{"a": "x\\\\", "b": {{s}}}', {"a": "x\\", "b": "hello"}),
        ('{"a\\"b": {{s}}}', {'a"b': "hello"}),
    ],
)
def test_render_json(source: str, expected: Any) -> None:
    assert json.loads(render(source, VARS, "json")) == expected


def test_transform_applies_to_every_value_text_and_yields_strings() -> None:
    def transform(text: str) -> str:
        return f"<{text}>"

    body = '{"a": {{n}}, "b": "{{yes}}", "c": {{obj}}, "d": {{missing}}}'
    result = json.loads(render(body, VARS, "json", transform=transform))
    assert result == {
        "a": "<3>",
        "b": "<true>",
        "c": '<{"latitude":12.97,"name":"Cubbon \\"Park\\""}>',
        "d": None,
    }
    assert render("{{s}}", VARS, "url_query", transform=transform) == "%3Chello%3E"
    assert render("{{s}}", VARS, "xml", transform=transform) == "&lt;hello&gt;"


@pytest.mark.parametrize("value", ["a\r\nX-Evil: 1", "a\nb", "a\rb"])
def test_header_injection_refused(value: str) -> None:
    with pytest.raises(HeaderInjection):
        render("v={{x}}", {"x": value}, "header")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{", "unclosed"),
        ("a {{b", "unclosed"),
        ("{{}}", "empty"),
        ("{{   }}", "empty"),
        ("{{a b}}", "invalid placeholder"),
        ("{{a.}}", "invalid placeholder"),
        ("{{a[x]}}", "invalid placeholder"),
        ("{{1a}}", "invalid placeholder"),
    ],
)
def test_compile_rejects(source: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        compile_template(source)


def test_variable_names_and_cache() -> None:
    template = compile_template("{{a.b[0].c}} {{ d }} {{a}} }} plain")
    assert template.variable_names == frozenset({"a", "d"})
    assert compile_template("{{a.b[0].c}} {{ d }} {{a}} }} plain") is template
    assert render(template, {"d": "x"}, "text") == " x  }} plain"


def test_no_placeholders() -> None:
    assert render("", VARS, "json") == ""
    assert render('{"fixed": true}', VARS, "json") == '{"fixed": true}'
