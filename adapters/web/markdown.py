"""Markdown → HTML for post-mortems, escaping first: raw HTML in the source is shown as text, never rendered.

Covers what post-mortem templates use: headings, paragraphs, block quotes, bullet and numbered lists, tables,
**bold**, _italic_ / *italic*, `code` and fenced code. Links stay text (no javascript: URLs to worry about).
"""

from __future__ import annotations

import re
from html import escape

_INLINE = [
    (re.compile(r"`([^`]+)`"), r"<code>\1</code>"),
    (re.compile(r"\*\*(.+?)\*\*"), r"<strong>\1</strong>"),
    (re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])"), r"<em>\1</em>"),
    (re.compile(r"(?<![\w])_(?!\s)(.+?)(?<!\s)_(?![\w])"), r"<em>\1</em>"),
]


def inline(text: str) -> str:
    out = escape(text, quote=True)
    for pattern, replacement in _INLINE:
        out = pattern.sub(replacement, out)
    return out


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def render(markdown: str) -> str:
    lines = markdown.splitlines()
    html: list[str] = []
    paragraph: list[str] = []
    i = 0

    def flush() -> None:
        if paragraph:
            html.append("<p>" + "<br>".join(inline(p) for p in paragraph) + "</p>")
            paragraph.clear()

    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith("```"):
            flush()
            block = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                block.append(lines[i])
                i += 1
            html.append("<pre><code>" + escape("\n".join(block)) + "</code></pre>")
            i += 1
            continue
        heading = re.match(r"^(#{1,6})\s+(.*)$", stripped)
        if heading:
            flush()
            level = min(6, len(heading.group(1)) + 1)  # the page has its own h1
            html.append(f"<h{level}>{inline(heading.group(2))}</h{level}>")
        elif stripped.startswith(">"):
            flush()
            html.append(f"<blockquote><p>{inline(stripped.lstrip('>').strip())}</p></blockquote>")
        elif re.match(r"^[-*+]\s+", stripped) or re.match(r"^\d+[.)]\s+", stripped):
            flush()
            ordered = bool(re.match(r"^\d", stripped))
            tag = "ol" if ordered else "ul"
            items = []
            while i < len(lines) and (re.match(r"^\s*\d+[.)]\s+", lines[i]) if ordered
                                      else re.match(r"^\s*[-*+]\s+", lines[i])):
                items.append("<li>" + inline(re.sub(r"^\s*(\d+[.)]|[-*+])\s+", "", lines[i])) + "</li>")
                i += 1
            html.append(f"<{tag}>{''.join(items)}</{tag}>")
            continue
        elif stripped.startswith("|") and i + 1 < len(lines) and re.match(r"^\|?[\s:|-]+\|?$", lines[i + 1].strip()):
            flush()
            head = "".join(f'<th scope="col">{inline(c)}</th>' for c in _cells(stripped))
            rows = []
            i += 2
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in _cells(lines[i])) + "</tr>")
                i += 1
            html.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")
            continue
        elif not stripped:
            flush()
        else:
            paragraph.append(stripped)
        i += 1
    flush()
    return "\n".join(html)
