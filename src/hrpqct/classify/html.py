"""A small builder of self-contained HTML documents: tables, embedded figures, no CDN, no JS.

Everything a page needs is inside the one file: the style sheet is inline, images are base64
PNG ``data:`` URIs or inline SVG. Text is HTML-escaped; only :meth:`HtmlDocument.raw` inserts
markup as given.
"""

from __future__ import annotations

import base64
import html as _html
import os
from pathlib import Path
from typing import Sequence

import pandas as pd

from ..io.atomic import atomic_path

__all__ = ["HtmlDocument", "esc", "write_html"]

_CSS = """
:root { --fg: #1d232a; --muted: #5b6570; --line: #d5dbe1; --head: #eef2f6; --accent: #2c5d8a; }
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; color: var(--fg);
       margin: 0 auto; max-width: 1180px; padding: 24px 28px 60px; line-height: 1.45;
       font-size: 14px; background: #fff; }
h1 { font-size: 24px; margin: 0 0 4px; color: var(--accent); }
h2 { font-size: 19px; margin: 34px 0 10px; padding-bottom: 4px; border-bottom: 2px solid
     var(--line); color: var(--accent); }
h3 { font-size: 15px; margin: 22px 0 8px; }
.subtitle { color: var(--muted); margin-bottom: 14px; }
.note { border-left: 4px solid #7aa7d6; background: #f2f7fc; padding: 8px 12px; margin: 10px 0; }
.note.warning { border-color: #d08a1e; background: #fdf6ea; }
.note.danger { border-color: #b3261e; background: #fcefee; font-weight: bold; }
table { border-collapse: collapse; margin: 8px 0 6px; font-size: 12.5px; }
caption { caption-side: top; text-align: left; font-weight: bold; padding: 4px 0 6px;
          color: var(--fg); }
th, td { border: 1px solid var(--line); padding: 3px 7px; text-align: right;
         vertical-align: top; white-space: nowrap; }
th { background: var(--head); text-align: center; }
td.text, th.text { text-align: left; white-space: normal; }
td.group { font-weight: bold; background: #fafbfc; text-align: left; }
td.best { font-weight: bold; }
td .ci { font-size: 10.5px; color: var(--muted); font-weight: normal; }
td.text { min-width: 4em; }
td.text.wide, th.text.wide { min-width: 16em; }
.tablenote { color: var(--muted); font-size: 12px; margin: 0 0 14px; max-width: 1000px; }
figure { margin: 10px 0 18px; display: inline-block; vertical-align: top; }
figure img, figure svg { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 12px; max-width: 560px; margin-top: 4px; }
.grid { display: flex; flex-wrap: wrap; gap: 14px; align-items: flex-start; }
.grid figure { margin: 0; }
nav.toc { background: #f7f9fb; border: 1px solid var(--line); padding: 8px 14px;
          margin: 12px 0; font-size: 13px; }
nav.toc ol { margin: 4px 0; padding-left: 20px; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 2px 14px; margin: 8px 0; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; border-top: 1px solid
         var(--line); padding-top: 8px; }
@media print { body { max-width: none; } h2 { page-break-after: avoid; }
               figure, table { page-break-inside: avoid; } }
"""


def esc(text) -> str:
    """HTML-escape any value (``None`` -> empty)."""
    return "" if text is None else _html.escape(str(text), quote=True)


def _slug(text: str, taken: set[str]) -> str:
    base = "".join(ch.lower() if ch.isalnum() else "-" for ch in text).strip("-") or "section"
    while "--" in base:
        base = base.replace("--", "-")
    slug, i = base, 2
    while slug in taken:
        slug, i = f"{base}-{i}", i + 1
    taken.add(slug)
    return slug


class HtmlDocument:
    """Build one self-contained HTML page piece by piece, then :meth:`render` or :meth:`write`.

    ``toc=True`` puts a table of contents of the ``level=2`` sections after the header.
    """

    def __init__(self, title: str, subtitle: str = "", toc: bool = True):
        self.title = title
        self.subtitle = subtitle
        self.toc = toc
        self._parts: list[str] = []
        self._sections: list[tuple[str, str]] = []
        self._slugs: set[str] = set()
        self._header: list[str] = []
        self.footer = ""

    # -- text
    def header(self, html_text: str) -> None:
        """Markup shown above the table of contents (as given)."""
        self._header.append(html_text)

    def section(self, title: str, level: int = 2) -> str:
        slug = _slug(title, self._slugs)
        if level == 2:
            self._sections.append((slug, title))
        self._parts.append(f'<h{level} id="{slug}">{esc(title)}</h{level}>')
        return slug

    def paragraph(self, text: str) -> None:
        self._parts.append(f"<p>{esc(text)}</p>")

    def note(self, text: str, kind: str = "info") -> None:
        """A boxed note; ``kind``: ``info``, ``warning`` or ``danger``."""
        self._parts.append(f'<div class="note {esc(kind)}">{esc(text)}</div>')

    def facts(self, items: Sequence[tuple[str, str]]) -> None:
        rows = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items)
        self._parts.append(f'<dl class="facts">{rows}</dl>')

    def raw(self, html_text: str) -> None:
        self._parts.append(html_text)

    # -- tables
    def table(self, df: pd.DataFrame, caption: str = "", note: str = "",
              bold: pd.DataFrame | None = None, group_column: str | None = None,
              text_columns: Sequence[str] = ()) -> None:
        """A table of already formatted values (``str(value)``, escaped).

        ``bold``: boolean frame of ``df``'s shape (True cells bold). ``group_column``: a column
        whose value is printed once per run of equal values (like the paper's "Anatomical
        structure" column). ``text_columns`` (and the group column) are left-aligned. A cell
        holding a ``(value, interval)`` tuple shows the interval small below the value.
        """
        cols = list(df.columns)
        left = set(text_columns) | ({group_column} if group_column else set())
        wide = {c for c in left if df[c].astype(str).str.len().max() > 28} if len(df) else set()
        head = "".join(f'<th class="{"text" if c in left else ""}">{esc(c)}</th>' for c in cols)
        body = []
        prev = object()
        values = df.to_numpy(dtype=object)
        for i in range(len(df)):
            cells = []
            for j, c in enumerate(cols):
                v = values[i, j]
                classes = []
                if c in left:
                    classes.append("text")
                if c in wide:
                    classes.append("wide")
                if c == group_column:
                    if v == prev:
                        v = ""
                    else:
                        prev = v
                        classes.append("group")
                if bold is not None and bool(bold.iat[i, j]):
                    classes.append("best")
                if isinstance(v, tuple) and len(v) == 2:  # (value, interval) on two lines
                    inner = f'{esc(v[0])}<br><span class="ci">{esc(v[1])}</span>' if v[1] \
                        else esc(v[0])
                else:
                    inner = esc("" if v is None or (isinstance(v, float) and v != v) else v)
                cells.append(f'<td class="{" ".join(classes)}">{inner}</td>')
            body.append("<tr>" + "".join(cells) + "</tr>")
        cap = f"<caption>{esc(caption)}</caption>" if caption else ""
        self._parts.append(f"<table>{cap}<thead><tr>{head}</tr></thead>"
                           f"<tbody>{''.join(body)}</tbody></table>")
        if note:
            self._parts.append(f'<p class="tablenote">{esc(note)}</p>')

    # -- figures
    @staticmethod
    def png_tag(png: bytes, alt: str = "", width: int | None = None) -> str:
        data = base64.b64encode(png).decode("ascii")
        w = f' width="{int(width)}"' if width else ""
        return f'<img src="data:image/png;base64,{data}" alt="{esc(alt)}"{w}>'

    def figure(self, png: bytes | None = None, caption: str = "", svg: str | None = None,
               alt: str = "", width: int | None = None) -> None:
        """One figure: PNG bytes (embedded base64) or inline SVG text."""
        self._parts.append(self._figure(png, caption, svg, alt, width))

    def _figure(self, png, caption, svg, alt, width) -> str:
        if (png is None) == (svg is None):
            raise ValueError("figure needs exactly one of png or svg")
        inner = self.png_tag(png, alt or caption, width) if png is not None else svg
        cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
        return f"<figure>{inner}{cap}</figure>"

    def grid(self, figures: Sequence[tuple]) -> None:
        """Figures side by side: items ``(png_bytes, caption)`` or ``(None, caption, svg)``."""
        items = []
        for f in figures:
            png, caption = f[0], f[1]
            svg = f[2] if len(f) > 2 else None
            items.append(self._figure(png, caption, svg, caption, None))
        self._parts.append(f'<div class="grid">{"".join(items)}</div>')

    # -- output
    def render(self) -> str:
        toc = ""
        if self.toc and self._sections:
            lis = "".join(f'<li><a href="#{s}">{esc(t)}</a></li>' for s, t in self._sections)
            toc = f'<nav class="toc"><b>Contents</b><ol>{lis}</ol></nav>'
        sub = f'<div class="subtitle">{esc(self.subtitle)}</div>' if self.subtitle else ""
        foot = f"<footer>{self.footer}</footer>" if self.footer else ""
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                f"<title>{esc(self.title)}</title><style>{_CSS}</style></head><body>"
                f"<h1>{esc(self.title)}</h1>{sub}{''.join(self._header)}{toc}"
                f"{''.join(self._parts)}{foot}</body></html>\n")

    def write(self, path: str | os.PathLike) -> Path:
        return write_html(self.render(), path)


def write_html(text: str, path: str | os.PathLike) -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8); returns the path."""
    target = Path(path)
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return target
