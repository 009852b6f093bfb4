"""Letter bodies: the HTML subset translators write in ``letter.html``, as Typst markup.

Supported: ``h1``–``h3`` (``h4``–``h6`` become level 3), ``p``, ``div``, ``span``,
``strong``/``b``, ``em``/``i``, ``u``, ``br``, ``hr``, ``ul``/``ol``/``li``,
``table``/``thead``/``tbody``/``tr``/``th``/``td`` (``colspan``; ``width="60%"`` sets the
column's share; ``align="right"`` or ``class="amount"`` right-aligns, and a column
whose cells all start with a number is right-aligned by itself), and ``a``. Anything
else keeps its text; ``script``, ``style`` and ``head`` are dropped.

Safety: every piece of text becomes a Typst *string literal* (``#"..."``), so no
character in the data — ``#``, ``$``, ``*``, ``_``, ``@``, ``<``, backslashes,
``#import`` — is ever read as Typst markup or code. Link targets are string
literals too, and only ``http``, ``https``, ``mailto`` and ``tel`` links are kept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser

#: Elements without content.
_VOID = frozenset({"br", "hr", "img", "meta", "link", "input", "col", "wbr", "area", "base", "source"})
_DROPPED = frozenset({"script", "style", "head", "title", "template"})
_BLOCKS = frozenset({"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "table", "hr", "blockquote"})
_STRONG = frozenset({"strong", "b"})
_EMPH = frozenset({"em", "i", "cite", "var", "dfn"})
_LINK_SCHEMES = ("http://", "https://", "mailto:", "tel:")
_AMOUNT_CLASSES = frozenset({"amount", "num", "number", "price", "right"})
#: A cell that reads as an amount: a number first ("8,90 c/kWh", "−1,5 %", "4.90 €/month").
_AMOUNT = re.compile(r"^[−\-+]?\s?\d")
#: Words longer than this get invisible break opportunities, so a long token cannot run off the page.
_LONG_WORD = 28
_BREAK_EVERY = 14
#: A piece of a long word that has no natural break and is longer than this is cut anyway (a token).
_TOKEN = 40
#: Words that are links or addresses, and where they may wrap: after "/" (but not inside "://"),
#: before ".", "?", "&", "=", "#", "@".
_URLISH = re.compile(r"://|^www\.|@|/")
_URL_BREAK = re.compile(r"(?<=/)(?!/)(?<!://)|(?=[.?&=#@])(?<!^)")
_SPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


@dataclass
class _Node:
    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[_Node | str] = field(default_factory=list)


class _TreeBuilder(HTMLParser):
    """Builds a forgiving element tree: unclosed tags close with their parent."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = _Node("root")
        self.stack = [self.root]
        self.dropping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROPPED:
            self.dropping += 1
            return
        if self.dropping:
            return
        node = _Node(tag, {k: v or "" for k, v in attrs})
        if tag in ("li", "tr", "td", "th", "p"):  # an open sibling closes (HTML's implied end tags)
            closes = {"li": ("li",), "tr": ("tr", "td", "th"), "td": ("td", "th"), "th": ("td", "th"), "p": ("p",)}
            while self.stack[-1].tag in closes[tag] and len(self.stack) > 1:
                self.stack.pop()
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID and not self.dropping and self.stack[-1].tag == tag:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROPPED:
            self.dropping = max(0, self.dropping - 1)
            return
        if self.dropping or tag in _VOID:
            return
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        if not self.dropping:
            self.stack[-1].children.append(data)


def string_literal(text: str) -> str:
    """``text`` as a Typst string literal: quotes and backslashes escaped, control characters dropped."""
    text = _CONTROL.sub("", text)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "") + '"'


#: A Typst comment between the body and its last block, which is kept on one page with the
#: opt-out QR code (see ``letter.typ``). Data never produces it: every text is a string literal.
KEEP_WITH_QR = "// dispatch:keep-with-qr"


def html_to_typst(html: str, replacements: Mapping[str, str] | None = None, *, keep_last: bool = False) -> str:
    """Typst markup for a letter body written in HTML.

    ``replacements`` maps text to print instead (e.g. a long opt-out URL → "see the QR
    code below"); it applies to text and link targets. With ``keep_last``, the last block
    follows :data:`KEEP_WITH_QR`, so that the QR code never stands alone on a page.
    """
    parser = _TreeBuilder()
    parser.feed(html)
    parser.close()
    writer = _Writer(dict(replacements or {}))
    if not keep_last:
        return writer.blocks(parser.root.children).strip() + "\n"
    blocks = writer.block_list(parser.root.children)
    if len(blocks) < 2:
        return "\n\n".join(blocks).strip() + "\n"
    return "\n\n".join(blocks[:-1]).strip() + f"\n\n{KEEP_WITH_QR}\n" + blocks[-1].strip() + "\n"


class _Writer:
    def __init__(self, replacements: dict[str, str]) -> None:
        self.replacements = {k: v for k, v in replacements.items() if k}

    # -- blocks ------------------------------------------------------------------------

    def blocks(self, children: list[_Node | str]) -> str:
        """Block-level content: paragraphs separated by blank lines; loose inline runs become paragraphs."""
        return "\n\n".join(self.block_list(children))

    def block_list(self, children: list[_Node | str]) -> list[str]:
        """The blocks of :meth:`blocks`, one string each."""
        out: list[str] = []
        run: list[_Node | str] = []

        def flush() -> None:
            if any(isinstance(c, _Node) or c.strip() for c in run):
                text = self.inline(_trimmed(run)).strip()
                if text:
                    out.append(text)
            run.clear()

        for child in children:
            if isinstance(child, _Node) and child.tag in _BLOCKS:
                flush()
                block = self.block(child)
                if block:
                    out.append(block)
            else:
                run.append(child)
        flush()
        return out

    def block(self, node: _Node) -> str:
        tag = node.tag
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            body = self.inline(_trimmed(node.children)).strip()
            return f"#heading(level: {min(3, int(tag[1]))})[{body}]" if body else ""
        if tag in ("p", "div", "blockquote"):
            if any(isinstance(c, _Node) and c.tag in _BLOCKS for c in node.children):
                return self.blocks(node.children)
            return self.inline(_trimmed(node.children)).strip()
        if tag in ("ul", "ol"):
            items = [c for c in node.children if isinstance(c, _Node) and c.tag == "li"]
            if not items:
                return ""
            function = "enum" if tag == "ol" else "list"
            return f"#{function}(" + ", ".join(f"[{self.blocks(item.children)}]" for item in items) + ")"
        if tag == "table":
            return self.table(node)
        if tag == "hr":
            return "#line(length: 100%, stroke: 0.4pt + luma(120))"
        return self.inline(node.children).strip()

    def table(self, node: _Node) -> str:
        header: list[list[_Node]] = []
        body: list[list[_Node]] = []
        for section, row in _rows(node):
            cells = [c for c in row.children if isinstance(c, _Node) and c.tag in ("td", "th")]
            if not cells:
                continue
            in_header = section == "thead" or (not body and not header and all(c.tag == "th" for c in cells))
            (header if in_header else body).append(cells)
        if not header and not body:
            return ""
        columns = max(sum(_span(c) for c in row) for row in header + body)
        widths = _widths(header + body, columns)
        right = self._right_aligned(header, body, columns)
        parts = [
            "columns: (" + ", ".join(widths) + ",)",
            "align: (" + ", ".join("right" if r else "left" for r in right) + ",)",
            f"inset: table-inset({columns})",  # letter.typ: flush with the text margins
        ]
        if header:
            parts.append("table.header(" + ", ".join(self.cell(c) for row in header for c in row) + ")")
        parts.extend(self.cell(c) for row in body for c in row)
        return "#table(" + ", ".join(parts) + ")"

    def cell(self, node: _Node) -> str:
        content = f"[{self.blocks(node.children)}]"
        span = _span(node)
        alignment = _cell_align(node)
        if span == 1 and alignment is None:
            return content
        args = [f"colspan: {span}"] if span > 1 else []
        if alignment is not None:
            args.append(f"align: {alignment}")
        return "table.cell(" + ", ".join(args) + ")" + content

    def _right_aligned(self, header: list[list[_Node]], body: list[list[_Node]], columns: int) -> list[bool]:
        """Per column: right-aligned when marked so, or when every body cell in it reads as an amount."""
        marked = [False] * columns
        texts: list[list[str]] = [[] for _ in range(columns)]
        for index, row in enumerate(header + body):
            col = 0
            for cell in row:
                if _span(cell) == 1 and col < columns:
                    if _cell_align(cell) == "right":
                        marked[col] = True
                    if index >= len(header):
                        texts[col].append(_text(cell).strip())
                col += _span(cell)
        return [
            marked[i] or (i > 0 and bool(texts[i]) and all(not t or _AMOUNT.match(t) for t in texts[i]))
            for i in range(columns)
        ]

    # -- inline ------------------------------------------------------------------------

    def inline(self, children: list[_Node | str]) -> str:
        out: list[str] = []
        for child in _around_breaks(children):
            if isinstance(child, str):
                out.append(self.text(child))
                continue
            tag = child.tag
            if tag == "br":
                out.append("#linebreak()")
            elif tag in _STRONG:
                out.append(f"#strong[{self.inline(child.children)}]")
            elif tag in _EMPH:
                out.append(f"#emph[{self.inline(child.children)}]")
            elif tag == "u":
                out.append(f"#underline[{self.inline(child.children)}]")
            elif tag == "a":
                out.append(self.link(child))
            elif tag in _BLOCKS:  # a block inside inline content (e.g. a list in a table cell)
                out.append(f"#block[{self.blocks([child])}]")
            elif tag in _VOID:
                continue
            else:
                out.append(self.inline(child.children))
        return "".join(out)

    def link(self, node: _Node) -> str:
        body = self.inline(node.children)
        href = node.attrs.get("href", "").strip()
        if href in self.replacements or not href.lower().startswith(_LINK_SCHEMES):
            return body
        return f"#link({string_literal(href)})[{body}]"

    def text(self, text: str) -> str:
        text = _SPACE.sub(" ", text)
        if not text:
            return ""
        for old, new in self.replacements.items():
            text = text.replace(old, new)
        return "#" + string_literal(_breakable(text))


def _rows(table: _Node):
    """(section, tr) for every row of a table, in order."""
    for child in table.children:
        if not isinstance(child, _Node):
            continue
        if child.tag == "tr":
            yield "tbody", child
        elif child.tag in ("thead", "tbody", "tfoot"):
            for row in child.children:
                if isinstance(row, _Node) and row.tag == "tr":
                    yield child.tag, row


def _span(cell: _Node) -> int:
    try:
        return max(1, min(20, int(cell.attrs.get("colspan", "1"))))
    except ValueError:
        return 1


def _cell_align(cell: _Node) -> str | None:
    align = cell.attrs.get("align", "").lower()
    classes = set(cell.attrs.get("class", "").lower().split())
    style = cell.attrs.get("style", "").replace(" ", "").lower()
    if align == "right" or classes & _AMOUNT_CLASSES or "text-align:right" in style:
        return "right"
    if align == "center" or "text-align:center" in style:
        return "center"
    return None


def _widths(rows: list[list[_Node]], columns: int) -> list[str]:
    """Column widths from the first row whose cells give ``width="NN%"``; else the first column takes the rest."""
    for row in rows:
        shares = []
        for cell in row:
            match = re.fullmatch(r"\s*(\d{1,3}(?:\.\d+)?)\s*%\s*", cell.attrs.get("width", ""))
            if not match or _span(cell) != 1:
                break
            shares.append(f"{float(match.group(1)):g}fr")
        else:
            if len(shares) == columns:
                return shares
    return ["1fr"] + ["auto"] * (columns - 1)


def _around_breaks(children: list[_Node | str]) -> list[_Node | str]:
    """``children`` without the white space next to a ``<br>`` (the template's line break after it
    would print as a space at the start of the next line)."""
    items = list(children)
    for i, child in enumerate(items):
        if isinstance(child, _Node) and child.tag == "br":
            if i > 0 and isinstance(items[i - 1], str):
                items[i - 1] = items[i - 1].rstrip()
            if i + 1 < len(items) and isinstance(items[i + 1], str):
                items[i + 1] = items[i + 1].lstrip()
    return items


def _trimmed(children: list[_Node | str]) -> list[_Node | str]:
    """``children`` without the white space at the start and end (HTML ignores it there)."""
    items = list(children)
    if items and isinstance(items[0], str):
        items[0] = items[0].lstrip()
    if items and isinstance(items[-1], str):
        items[-1] = items[-1].rstrip()
    return items


def _text(node: _Node | str) -> str:
    if isinstance(node, str):
        return node
    return "".join(_text(c) for c in node.children)


def _breakable(text: str) -> str:
    """Long words with zero-width spaces where they may wrap: a URL or address after ``/`` and
    before ``.``, ``?``, ``&``, ``=``, ``#`` or ``@`` (never inside a word: "…/sopimusehdot", not
    "…/s opimusehdot", as the Chicago Manual of Style 14.18 and the Finnish Kielitoimisto advise);
    only a run with no such place (a token) is cut every few characters."""
    if len(text) <= _LONG_WORD:
        return text
    return re.sub(rf"\S{{{_LONG_WORD + 1},}}", lambda m: _break_word(m.group(0)), text)


def _break_word(word: str) -> str:
    pieces = _URL_BREAK.sub("\u200b", word).split("\u200b") if _URLISH.search(word) else [word]
    return "\u200b".join(_chunks(piece) for piece in pieces)


def _chunks(piece: str) -> str:
    """A piece too long for a line even on its own (a signed token), cut every few characters."""
    if len(piece) <= _TOKEN:
        return piece
    return "\u200b".join(piece[i : i + _BREAK_EVERY] for i in range(0, len(piece), _BREAK_EVERY))
