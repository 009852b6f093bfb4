"""Cut one letter's PDF out of a PDF that Typst set for many letters at once.

Typst spends most of a one-letter compile on work that is the same for every letter
(reading the template, setting up the document, writing fonts); setting many letters
in one compile and cutting each letter's pages out is about twice as fast. The cut
file keeps what the letter had when it was set alone:

- its pages, with their resources (the fonts are the batch's subsets), links and contents;
- PDF/A: the output intent, and the XMP metadata with the letter's title, language and
  page count (dc:title matches the document information's /Title, as PDF/A asks);
- tags: the structure elements that mark content on the letter's pages, under a
  Document element of their own, the parent tree and ID tree entries of those pages;
- the bookmarks (outline) of the letter's headings.

Where each letter starts and how many pages it has comes from the page labels: a joint PDF
is set with a label prefix per letter (:meth:`ChunkPdf.letter_pages`). :func:`join` puts
pages of such PDFs together into a print batch the same way (no tags, no page labels).

Only what Typst writes is read: a classic cross-reference table, objects numbered
``N 0 obj``, flat number and name trees. Anything else raises :class:`SplitError`
and the caller sets those letters one by one instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape


class SplitError(ValueError):
    """The PDF is not laid out as this module expects (the caller sets the letters one by one)."""


_OBJECT = re.compile(rb"(\d+) 0 obj\n")
#: A reference outside strings: literal strings (with escapes) and hex strings are skipped over.
_TOKEN = re.compile(rb"\((?:\\.|[^\\()])*\)|<[0-9A-Fa-f\s]*>|(\d+) 0 R", re.S)
_REF = rb"(\d+) 0 R"
_TITLE = re.compile(rb"/Title\s*(\((?:\\.|[^\\()])*\)|<[0-9A-Fa-f]*>)")


@dataclass
class _Object:
    head: bytes  # the dictionary or value, before any stream
    stream: bytes  # b"" or b"stream\n...\nendstream\n"


class ChunkPdf:
    """A PDF of many letters, parsed once; :meth:`letter` writes one letter's PDF."""

    def __init__(self, pdf: bytes) -> None:
        self.pdf = pdf
        self.objects: dict[int, _Object] = {}
        start = pdf.rfind(b"startxref")
        xref = re.match(rb"startxref\s+(\d+)", pdf[start:]) if start >= 0 else None
        if xref is None or not pdf.startswith(b"xref", int(xref.group(1))):
            raise SplitError("no classic cross-reference table")
        trailer = pdf[pdf.rfind(b"trailer", 0, start) : start]
        # The objects where the cross-reference table says they are (never a search through stream data).
        table = re.match(rb"xref\s+0\s+(\d+)\s*\n", pdf[int(xref.group(1)) :])
        if table is None:
            raise SplitError("a cross-reference table in several sections")
        at = int(xref.group(1)) + table.end()
        for number in range(1, int(table.group(1))):
            entry = pdf[at + 20 * number : at + 20 * number + 18]
            if not entry.endswith(b" n"):
                continue
            begin = int(entry[:10])
            head = _OBJECT.match(pdf, begin)
            if head is None or int(head.group(1)) != number:
                raise SplitError("an object is not where the table says")
            begin = head.end()
            end = pdf.find(b"endobj", begin)
            body = pdf[begin:end]
            stream_at = body.find(b"stream\n")
            if stream_at >= 0 and body[:stream_at].rstrip().endswith(b">>"):
                length = re.search(rb"/Length (\d+)", body[:stream_at])
                if length is None:
                    raise SplitError("a stream without a direct length")
                stop = begin + stream_at + 7 + int(length.group(1))
                end = pdf.find(b"endobj", stop)
                self.objects[number] = _Object(body[:stream_at], pdf[begin + stream_at : end])
            else:
                self.objects[number] = _Object(body, b"")
        root = re.search(rb"/Root " + _REF, trailer)
        info = re.search(rb"/Info " + _REF, trailer)
        if root is None:
            raise SplitError("no catalog")
        ident = re.search(rb"/ID\s*\[.*?\]", trailer, re.S)
        self.ident = ident.group(0) if ident else b""
        self.root = int(root.group(1))
        self.info = int(info.group(1)) if info else None
        catalog = self.objects[self.root].head
        self.catalog = catalog
        pages = self._ref(catalog, b"Pages")
        kids = re.search(rb"/Kids\s*\[(.*?)\]", self.objects[pages].head, re.S)
        if kids is None or b"/Kids" in b"".join(self.objects[int(k)].head for k in re.findall(_REF, kids.group(1))):
            raise SplitError("a nested page tree")
        self.pages_node = pages
        self.pages = [int(k) for k in re.findall(_REF, kids.group(1))]
        self.struct_root = self._ref(catalog, b"StructTreeRoot")
        self.document = None
        self.parent_tree: dict[int, bytes] = {}
        self.id_tree: list[tuple[bytes, int]] = []
        if self.struct_root is not None:
            head = self.objects[self.struct_root].head
            kids = re.search(rb"/K\s*\[\s*" + _REF + rb"\s*\]", head) or re.search(rb"/K " + _REF, head)
            if kids is None or b"/Kids" in head:
                raise SplitError("an unexpected structure tree root")
            self.document = int(kids.group(1))
            nums = re.search(rb"/ParentTree\s*<<\s*/Nums\s*\[(.*?)\]\s*>>", head, re.S)
            if nums is None:
                raise SplitError("no flat parent tree")
            for key, value in re.findall(rb"(\d+)\s+(\d+ 0 R|\[[^\]]*\])", nums.group(1)):
                self.parent_tree[int(key)] = value
            names = re.search(rb"/IDTree\s*<<\s*/Names\s*\[(.*?)\]\s*>>", head, re.S)
            if names is not None:
                self.id_tree = [
                    (name, int(ref)) for name, ref in re.findall(rb"(\((?:\\.|[^\\()])*\))\s*(\d+) 0 R", names.group(1))
                ]
        self.outline = self._ref(catalog, b"Outlines")
        self._kids: list[tuple[int, set[int]]] | None = None
        self._cut: dict[int, list[bytes | int]] = {}
        self._bookmarks: list[tuple[int, int | None, int | None]] | None = None

    def letter_pages(self) -> list[tuple[int, int]]:
        """(first page from 0, pages) of each letter, in order, from the page labels' prefixes.

        A PDF set with ``marks`` (see :func:`dispatch_letter.layout._inputs`) gives each letter's
        pages a label prefix of their own; a letter is a run of pages with one prefix.
        """
        labels = self._ref(self.catalog, b"PageLabels")
        if labels is None:
            raise SplitError("no page labels")
        nums = re.search(rb"/Nums\s*\[(.*?)\]", self.objects[labels].head, re.S)
        if nums is None:
            raise SplitError("no flat page label tree")
        starts = []
        for key, ref in re.findall(rb"(\d+)\s+(\d+) 0 R", nums.group(1)):
            prefix = re.search(rb"/P\s*(\((?:\\.|[^\\()])*\))", self.objects[int(ref)].head)
            starts.append((int(key), prefix.group(1) if prefix else b""))
        if not starts or starts[0][0] != 0:
            raise SplitError("the first page has no label")
        runs: list[list[Any]] = []
        bounds = [key for key, _ in starts[1:]] + [len(self.pages)]
        for (key, prefix), end in zip(starts, bounds, strict=True):
            if runs and runs[-1][2] == prefix:
                runs[-1][1] += end - key
            else:
                runs.append([key, end - key, prefix])
        return [(first, count) for first, count, _ in runs]

    # -- reading -------------------------------------------------------------------------

    def _ref(self, head: bytes, key: bytes) -> int | None:
        match = re.search(rb"/" + key + rb" " + _REF, head)
        return int(match.group(1)) if match else None

    def _refs(self, head: bytes) -> list[int]:
        return [int(m.group(1)) for m in _TOKEN.finditer(head) if m.group(1)]

    def _pieces(self, number: int) -> list[bytes | int]:
        """An original object's head cut at its references (worked out once per object)."""
        pieces = self._cut.get(number)
        if pieces is None:
            pieces = self._cut[number] = _cut(self.objects[number].head)
        return pieces

    def _document_kids(self) -> list[tuple[int, set[int]]]:
        """The Document element's children and the pages each marks content on (worked out once)."""
        if self._kids is None:
            head = self.objects[self.document].head
            kids = re.search(rb"/K\s*\[(.*?)\]", head, re.S)
            self._kids = [(k, self._pages_of(k, set())) for k in self._refs(kids.group(1) if kids else b"")]
        return self._kids

    def _pages_of(self, number: int, seen: set[int]) -> set[int]:
        """The pages a structure element (and what is under it) marks content on."""
        if number in seen:
            return set()
        seen.add(number)
        head = self.objects[number].head
        found = {int(p) for p in re.findall(rb"/Pg " + _REF, head)}
        kids = re.search(rb"/K\s*(\[.*\]|\d+ 0 R)", head, re.S)
        if kids is not None:
            for ref in self._refs(kids.group(1)):
                if ref in self.objects and b"/StructElem" in self.objects[ref].head:
                    found |= self._pages_of(ref, seen)
        return found

    def _outline_items(self, parent: int, level: int = 0) -> list[tuple[int, int, int | None]]:
        """(item, parent item or None, its page) for every bookmark, in order."""
        items = []
        child = self._ref(self.objects[parent].head, b"First")
        while child is not None:
            head = self.objects[child].head
            dest = re.search(rb"/Dest\s*(\[.*?\]|\d+ 0 R)", head, re.S)
            page = None
            if dest is not None:
                target = dest.group(1)
                if not target.startswith(b"["):
                    target = self.objects[int(target.split()[0])].head
                first = re.match(rb"\s*\[\s*" + _REF, target)
                page = int(first.group(1)) if first else None
            items.append((child, None if level == 0 else parent, page))
            items.extend(self._outline_items(child, level + 1))
            child = self._ref(head, b"Next")
        return items

    # -- writing -------------------------------------------------------------------------

    def letter(self, first: int, count: int, *, title: str, lang: str) -> bytes:
        """The PDF of the letter on pages ``first`` .. ``first + count - 1`` (from 0)."""
        pages = self.pages[first : first + count]
        if len(pages) != count:
            raise SplitError("fewer pages than letters")
        wanted = set(pages)
        alias: dict[int, int] = {}  # old objects whose references go to a new one
        new: dict[int, bytes] = {}  # replaced objects (old number -> new head)
        extra: list[bytes] = []  # objects made here, numbered after the copied ones
        base = max(self.objects) + 1

        def made(head: bytes) -> int:
            extra.append(head)
            return base + len(extra) - 1

        pages_node = made(b"")  # filled in below
        catalog = self.catalog
        # The page tree: the letter's pages only.
        extra[pages_node - base] = b"<</Type/Pages/Count %d/Kids[%s]>>\n" % (
            count,
            b" ".join(b"%d 0 R" % p for p in pages),
        )
        catalog = _set(catalog, b"Pages", b"%d 0 R" % pages_node)
        for page in pages:
            new[page] = _set(self.objects[page].head, b"Parent", b"%d 0 R" % pages_node)
        # Tags: the structure elements on these pages, under a Document element of their own.
        if self.struct_root is not None and self.document is not None:
            doc_head = self.objects[self.document].head
            keep = [kid for kid, on in self._document_kids() if on & wanted]
            root_number = made(b"")
            kids = b"[" + b" ".join(b"%d 0 R" % k for k in keep) + b"]"
            document = made(_set(_set(doc_head, b"K", kids), b"P", b"%d 0 R" % root_number))
            keys = []
            for page in pages:
                head = self.objects[page].head
                keys += [int(k) for k in re.findall(rb"/StructParents (\d+)", head)]
                annots = re.search(rb"/Annots\s*\[(.*?)\]", head, re.S)
                for ref in self._refs(annots.group(1) if annots else b""):
                    keys += [int(k) for k in re.findall(rb"/StructParent (\d+)", self.objects[ref].head)]
            nums = b" ".join(b"%d %s" % (k, self.parent_tree[k]) for k in sorted(keys) if k in self.parent_tree)
            root_head = self.objects[self.struct_root].head
            root_head = re.sub(rb"/ParentTree\s*<<.*?>>", b"/ParentTree<</Nums[" + nums + b"]>>", root_head, flags=re.S)
            root_head = _set(root_head, b"K", b"[%d 0 R]" % document)
            alias[self.document] = document
            on_pages = set(self.pages)  # a page leads to every other page (its /Parent): stop there
            reachable = self._walk(
                keep, lambda n: self._pieces(n) if n in self.objects and n not in on_pages else [], alias
            )
            names = b"".join(b"%s%d 0 R" % (n, r) for n, r in self.id_tree if r in reachable)
            root_head = re.sub(rb"/IDTree\s*<<.*?>>", b"/IDTree<</Names[" + names + b"]>>", root_head, flags=re.S)
            extra[root_number - base] = root_head
            catalog = _set(catalog, b"StructTreeRoot", b"%d 0 R" % root_number)
        # Bookmarks: those of the letter's headings, nested as they were.
        if self.outline is not None:
            if self._bookmarks is None:
                self._bookmarks = self._outline_items(self.outline)
            items = [(i, p) for i, p, page in self._bookmarks if page in wanted]
            if items:
                outline = made(b"")
                kept = {i for i, _ in items}
                parents = {i: (p if p in kept else outline) for i, p in items}
                children: dict[int, list[int]] = {}
                for item, _ in items:
                    children.setdefault(parents[item], []).append(item)

                def descendants(node: int) -> int:
                    return sum(1 + descendants(c) for c in children.get(node, []))

                for node, kids in children.items():
                    for n, item in enumerate(kids):
                        head = _drop(self.objects[item].head, (b"Parent", b"Prev", b"Next", b"First", b"Last"))
                        head = re.sub(rb"/Count -?\d+", b"", head)
                        links = [b"/Parent %d 0 R" % node]
                        if n > 0:
                            links.append(b"/Prev %d 0 R" % kids[n - 1])
                        if n + 1 < len(kids):
                            links.append(b"/Next %d 0 R" % kids[n + 1])
                        if item in children:
                            links.append(
                                b"/First %d 0 R/Last %d 0 R/Count %d"
                                % (children[item][0], children[item][-1], descendants(item))
                            )
                        new[item] = _append(head, b"".join(links))
                top = children[outline]
                extra[outline - base] = b"<</Type/Outlines/First %d 0 R/Last %d 0 R/Count %d>>\n" % (
                    top[0],
                    top[-1],
                    descendants(outline),
                )
                catalog = _set(catalog, b"Outlines", b"%d 0 R" % outline)
            else:
                catalog = _drop(catalog, (b"Outlines",))
        catalog = _drop(catalog, (b"PageLabels", b"Names"))
        lang_string = _pdf_string(lang)
        catalog = re.sub(rb"/Lang\s*(\((?:\\.|[^\\()])*\)|<[0-9A-Fa-f]*>)", b"/Lang" + lang_string, catalog)
        # Metadata: the letter's title, language and page count.
        metadata = self._ref(catalog, b"Metadata")
        if metadata is not None:
            xmp = self.objects[metadata].stream
            body = xmp[len(b"stream\n") : xmp.rfind(b"\nendstream")]
            text = body.decode("utf-8")
            text = re.sub(
                r'(<dc:title><rdf:Alt><rdf:li xml:lang="x-default">).*?(</rdf:li>)',
                lambda m: m.group(1) + escape(title) + m.group(2),
                text,
                flags=re.S,
            )
            text = re.sub(
                r"(<dc:language><rdf:Bag><rdf:li>).*?(</rdf:li>)",
                lambda m: m.group(1) + escape(lang) + m.group(2),
                text,
            )
            text = re.sub(r"<xmpTPg:NPages>\d+</xmpTPg:NPages>", f"<xmpTPg:NPages>{count}</xmpTPg:NPages>", text)
            data = text.encode("utf-8")
            head = re.sub(rb"/Length \d+", b"/Length %d" % len(data), self.objects[metadata].head)
            number = made(head + b"stream\n" + data + b"\nendstream\n")
            catalog = _set(catalog, b"Metadata", b"%d 0 R" % number)
        info = None
        if self.info is not None:
            head = re.sub(_TITLE, b"/Title" + _pdf_string(title), self.objects[self.info].head)
            info = made(head)
        catalog_number = made(catalog)
        # Everything reachable from the new catalog, with old objects renumbered in order.
        extra_heads = {base + i: h for i, h in enumerate(extra)}
        start = [catalog_number] + ([info] if info else [])
        changed = {n: _cut(_split_head(h)) for n, h in (*new.items(), *extra_heads.items())}
        order = sorted(self._walk(start, lambda n: changed.get(n) or self._pieces(n), alias))
        numbering = {old: i + 1 for i, old in enumerate(order)}
        numbering.update((old, numbering[target]) for old, target in alias.items())
        out = bytearray(b"%PDF-1.7\n%\x80\x80\x80\x80\n\n")
        offsets = []
        for old in order:
            stream = _split(extra_heads[old])[1] if old in extra_heads else self.objects[old].stream
            pieces = changed.get(old) or self._pieces(old)
            offsets.append(len(out))
            out += b"%d 0 obj\n" % numbering[old]
            out += b"".join(p if p.__class__ is bytes else b"%d 0 R" % numbering[p] for p in pieces) + stream
            out += b"endobj\n"
        xref = len(out)
        out += b"xref\n0 %d\n0000000000 65535 f\r\n" % (len(order) + 1)
        out += b"".join(b"%010d 00000 n\r\n" % o for o in offsets)
        trailer = b"/Size %d/Root %d 0 R" % (len(order) + 1, numbering[catalog_number])
        if info is not None:
            trailer += b"/Info %d 0 R" % numbering[info]
        out += b"trailer\n<<" + trailer + self.ident + b">>\nstartxref\n%d\n%%%%EOF" % xref
        return bytes(out)

    def _walk(self, start: list[int], head_of, alias: dict[int, int]) -> set[int]:
        """The objects reachable from ``start``; a reference to a key of ``alias`` goes to its value."""
        seen: set[int] = set()
        stack = list(start)
        while stack:
            number = stack.pop()
            if number in seen:
                continue
            seen.add(number)
            stack.extend(alias.get(p, p) for p in head_of(number) if p.__class__ is int)
        return seen


def _split_head(head: bytes) -> bytes:
    at = head.find(b"stream\n")
    return head if at < 0 else head[:at]


def _split(raw: bytes) -> tuple[bytes, bytes]:
    at = raw.find(b"stream\n")
    return (raw, b"") if at < 0 else (raw[:at], raw[at:])


def _cut(head: bytes) -> list[bytes | int]:
    """``head`` as text pieces and the object numbers of its references, in order."""
    pieces: list[bytes | int] = []
    at = 0
    for match in _TOKEN.finditer(head):
        if match.group(1) is not None:
            pieces.append(head[at : match.start()])
            pieces.append(int(match.group(1)))
            at = match.end()
    pieces.append(head[at:])
    return pieces


def _set(head: bytes, key: bytes, value: bytes) -> bytes:
    """``head`` (a dictionary) with ``/key value``, replacing a reference, array or number there."""
    pattern = rb"/" + key + rb"(?![A-Za-z])\s*(\d+ 0 R|\[[^\]]*\]|-?\d+)"
    if re.search(pattern, head):
        return re.sub(pattern, lambda _: b"/" + key + b" " + value, head, count=1)
    return _append(head, b"/" + key + b" " + value)


def _append(head: bytes, entries: bytes) -> bytes:
    end = head.rfind(b">>")
    return head[:end] + entries + head[end:]


def _drop(head: bytes, keys: tuple[bytes, ...]) -> bytes:
    for key in keys:
        head = re.sub(rb"/" + key + rb"(?![A-Za-z])\s*(\d+ 0 R|\[[^\]]*\]|<<[^<>]*>>)", b"", head)
    return head


def _pdf_string(text: str) -> bytes:
    """A PDF text string: printable ASCII as a literal string, anything else as UTF-16BE hex."""
    if text.isascii() and text.isprintable():
        return b"(" + text.encode("ascii").replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"
    return b"<FEFF" + text.encode("utf-16-be").hex().upper().encode() + b">"


def join(pieces: list[tuple[ChunkPdf, int, int]]) -> bytes:
    """One PDF of ``(pdf, first page, pages)`` pieces, in order: a print batch, without tags.

    The pages keep their resources (each piece's fonts come along once per PDF they are
    from); the first piece's PDF gives the output intent, the XMP metadata (with the page
    count) and the document information, so a batch of PDF/A parts is laid out as PDF/A.
    """
    if not pieces:
        raise SplitError("nothing to join")
    first = pieces[0][0]
    numbering: dict[tuple[int, int], int] = {}
    order: list[tuple[int, int]] = []  # (piece's PDF index, old object number)
    sources: list[ChunkPdf] = []
    index_of: dict[int, int] = {}
    page_keys: list[tuple[int, int]] = []
    for pdf, start, count in pieces:
        if id(pdf) not in index_of:
            index_of[id(pdf)] = len(sources)
            sources.append(pdf)
        source = index_of[id(pdf)]
        pages = pdf.pages[start : start + count]
        if len(pages) != count:
            raise SplitError("fewer pages than asked for")
        page_keys.extend((source, page) for page in pages)
    total = sum(count for _, _, count in pieces)
    next_number = 1
    pages_node = next_number
    next_number += 1

    def number(key: tuple[int, int]) -> int:
        nonlocal next_number
        found = numbering.get(key)
        if found is None:
            found = numbering[key] = next_number
            next_number += 1
            order.append(key)
        return found

    # What the pages need (a page's /Parent is the new page tree; nothing leads back to the old one).
    stack = list(reversed(page_keys))
    for key in page_keys:
        number(key)
    seen: set[tuple[int, int]] = set()
    while stack:
        key = stack.pop()
        if key in seen:
            continue
        seen.add(key)
        source, old = key
        pdf = sources[source]
        for ref in pdf._pieces(old):
            if ref.__class__ is int and ref != pdf.pages_node:
                number((source, ref))
                stack.append((source, ref))
    # The first PDF's output intent, metadata and document information.
    catalog = first.catalog
    extras = []
    for key in (b"OutputIntents", b"Metadata"):
        ref = first._ref(catalog, key)
        if ref is not None:
            stack = [(0, ref)]
            while stack:
                item = stack.pop()
                if item in seen:
                    continue
                seen.add(item)
                number(item)
                stack.extend((0, r) for r in first._pieces(item[1]) if r.__class__ is int)
            extras.append((key, ref))
    if first.info is not None:
        number((0, first.info))
    out = bytearray(b"%PDF-1.7\n%\x80\x80\x80\x80\n\n")
    offsets: dict[int, int] = {}
    page_set = set(page_keys)
    offsets[pages_node] = len(out)
    kids = b" ".join(b"%d 0 R" % numbering[key] for key in page_keys)
    out += b"%d 0 obj\n<</Type/Pages/Count %d/Kids[%s]>>\nendobj\n" % (pages_node, total, kids)
    for key in order:
        source, old = key
        pdf = sources[source]
        new = numbering[key]
        offsets[new] = len(out)
        if key in page_set:
            pieces_ = _cut(re.sub(rb"/StructParents \d+", b"", pdf.objects[old].head))  # the batch is not tagged
        else:
            pieces_ = pdf._pieces(old)
        stream = pdf.objects[old].stream
        if source == 0 and any(old == ref for key_, ref in extras if key_ == b"Metadata"):
            text = re.sub(rb"<xmpTPg:NPages>\d+</xmpTPg:NPages>", b"<xmpTPg:NPages>%d</xmpTPg:NPages>" % total, stream)
            data = text[len(b"stream\n") : text.rfind(b"\nendstream")]
            stream = text
            pieces_ = _cut(re.sub(rb"/Length \d+", b"/Length %d" % len(data), pdf.objects[old].head))
        body = b"".join(
            p if p.__class__ is bytes else b"%d 0 R" % (pages_node if p == pdf.pages_node else numbering[(source, p)])
            for p in pieces_
        )
        out += b"%d 0 obj\n" % new + body + stream + b"endobj\n"
    catalog_number = next_number
    entries = b"".join(b"/%s %d 0 R" % (key, numbering[(0, ref)]) for key, ref in extras)
    lang = re.search(rb"/Lang\s*(\((?:\\.|[^\\()])*\)|<[0-9A-Fa-f]*>)", catalog)
    entries += b"/Lang" + lang.group(1) if lang else b""
    offsets[catalog_number] = len(out)
    out += b"%d 0 obj\n<</Type/Catalog/Pages %d 0 R%s>>\nendobj\n" % (catalog_number, pages_node, entries)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f\r\n" % (catalog_number + 1)
    out += b"".join(b"%010d 00000 n\r\n" % offsets[n] for n in range(1, catalog_number + 1))
    trailer = b"/Size %d/Root %d 0 R" % (catalog_number + 1, catalog_number)
    if first.info is not None:
        trailer += b"/Info %d 0 R" % numbering[(0, first.info)]
    out += b"trailer\n<<" + trailer + first.ident + b">>\nstartxref\n%d\n%%%%EOF" % xref
    return bytes(out)
