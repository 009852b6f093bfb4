"""Evidence packs (SPEC §14): what was sent to whom, why, in which approved text — one zip file.

:func:`write_pack` answers a regulator or a court for a campaign, or for a message
type over a period. The pack (a zip) holds:

- ``manifest.csv`` and ``manifest.json``: one row per message decided for a recipient
  (a statutory fallback adds a row, linked both ways) — decision, reasons, legal
  basis, channel, queued/sent/delivered moments, attempts, fallbacks, the template
  version with its approval (who, when) and the content hash;
- ``variants/<id>.json`` (and a readable ``variants/<id>/<part>`` per part): the
  rendered content of each distinct variant, with its per-person values as tokens;
  ``content/<hash>.json`` for a message that was rendered whole;
- ``summary.txt`` (for a person) and ``summary.json``: counts by outcome, notices
  later than their lead time;
- ``SHA256SUMS``: the SHA-256 of every other file (``sha256sum -c`` checks it).

The JSON schema is in ``docs/evidence.md``. Personal data only as the manifest needs
it: the recipient id, and in ``manifest.json`` the per-person values a message's
content was filled with (to rebuild it byte for byte). Never ``national_id``, never
the stored inputs, never delivery error texts (they may quote an address). CSV cells
are neutralised against formula injection (:mod:`dispatch.csv_safety`).

Memory stays flat however many messages: rows are read in keyset-paged chunks and
written to files in a temporary folder next to the pack, which are then copied into
the zip (hashing as they go).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import tempfile
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import render_cache
from .clock import now_utc
from .csv_safety import safe_row
from .errors import InputError
from .store import Store, decode_content
from .store.approvals import approval_in_force

SCHEMA = "dispatch-evidence/1"
#: Fields of the manifest CSV, in order (the JSON rows have these and more, see docs/evidence.md).
CSV_FIELDS = (
    "message_id",
    "recipient_id",
    "campaign_id",
    "message_type",
    "category",
    "decision",
    "reasons",
    "legal_basis",
    "channel",
    "language",
    "status",
    "decided_at",
    "queued_at",
    "sent_at",
    "delivered_at",
    "bounced_at",
    "failed_at",
    "deadline",
    "late_notice",
    "attempts",
    "attempt_outcomes",
    "fallback_of",
    "fallbacks",
    "template_version",
    "template_approved_by",
    "template_approved_at",
    "content_hash",
    "variant",
)
#: Keys never written to a pack, wherever they appear.
NEVER = frozenset({"national_id"})
#: Marks a per-person value in the readable copy of a variant.
PERSONAL = "«personal value»"


def content_hash(parts: Mapping[str, str]) -> str:
    """SHA-256 of a message's rendered parts: canonical JSON (sorted keys, no spaces, UTF-8)."""
    text = json.dumps(dict(parts), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def rebuild(variant: Mapping[str, Any], values: Mapping[str, str], tidy_after: bool) -> dict[str, str]:
    """A message's parts from a pack's ``variants/<id>.json`` record and its row's ``values``."""
    from .render import Renderer

    return render_cache.assemble(variant, values, tidy_after, Renderer.tidy)


@dataclass
class PackSummary:
    """What a pack holds (also written as ``summary.json``)."""

    selection: dict[str, Any]
    generated_at: datetime
    messages: int = 0
    by_status: Counter = field(default_factory=Counter)
    by_decision: Counter = field(default_factory=Counter)
    by_channel: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)
    template_versions: Counter = field(default_factory=Counter)
    unapproved_versions: Counter = field(default_factory=Counter)
    late_notices: int = 0
    fallbacks: int = 0
    variants: int = 0
    files: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "selection": self.selection,
            "generated_at": self.generated_at.isoformat(),
            "messages": self.messages,
            "by_status": dict(sorted(self.by_status.items())),
            "by_decision": dict(sorted(self.by_decision.items())),
            "by_channel": dict(sorted(self.by_channel.items())),
            "reasons": dict(self.reasons.most_common()),
            "template_versions": dict(sorted(self.template_versions.items())),
            "unapproved_versions": dict(sorted(self.unapproved_versions.items())),
            "late_notices": self.late_notices,
            "fallbacks": self.fallbacks,
            "variants": self.variants,
        }

    def text(self) -> str:
        """The summary for a person to read."""
        what = self.selection
        if what.get("campaign_id"):
            title = f"campaign {what['campaign_id']}"
        else:
            title = f"{what.get('message_type')} decided {what.get('from')} – {what.get('to')} (inclusive)"
        lines = [
            f"Evidence pack: {title}",
            f"Generated {self.generated_at:%Y-%m-%d %H:%M:%S} UTC by dispatch ({SCHEMA})",
            "",
            f"Messages: {self.messages} (one row each in manifest.csv and manifest.json)",
        ]
        for title_, counter in (
            ("Decision", self.by_decision),
            ("Outcome (status now)", self.by_status),
            ("Channel", self.by_channel),
            ("Reasons for not sending", self.reasons),
            ("Template versions (type/language/channel version)", self.template_versions),
        ):
            if counter:
                lines += ["", f"{title_}:"] + [f"  {k}: {n}" for k, n in sorted(counter.items())]
        lines += [
            "",
            f"Notices later than their lead time (reason notice_period): {self.late_notices}",
            f"Statutory fallbacks to another channel: {self.fallbacks}",
            "Messages whose template version had no approval when they were decided: "
            f"{sum(self.unapproved_versions.values())}",
            f"Distinct rendered variants: {self.variants} (variants/ and content/)",
            "",
            "Every file's SHA-256 is in SHA256SUMS (check with: sha256sum -c SHA256SUMS).",
        ]
        return "\n".join(lines) + "\n"


def write_pack(
    store: Store,
    output: str | Path,
    *,
    campaign_id: str | None = None,
    message_type: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    selection: Mapping[str, Any] | None = None,
    chunk_size: int = 1000,
    progress: Callable[[int], None] | None = None,
    now: datetime | None = None,
) -> PackSummary:
    """Write the evidence pack of a campaign, or of ``message_type`` decided in ``[since, until)``.

    Raises :class:`InputError` when the selection is unclear or matches no message.
    """
    if (campaign_id is None) == (message_type is None):
        raise InputError("give a campaign id, or a message type with a period (--type, --from, --to)")
    if campaign_id is None and (since is None or until is None):
        raise InputError("a message type needs a period: --from and --to")
    target = Path(output)
    summary = PackSummary(
        dict(selection or {"campaign_id": campaign_id, "message_type": message_type}), now or now_utc()
    )
    with tempfile.TemporaryDirectory(prefix=".evidence-", dir=target.parent if target.parent.exists() else None) as tmp:
        folder = Path(tmp)
        (folder / "variants").mkdir()
        (folder / "content").mkdir()
        with (
            open(folder / "manifest.csv", "w", encoding="utf-8", newline="") as csv_file,
            open(folder / "manifest.json", "w", encoding="utf-8") as json_file,
        ):
            writer = csv.DictWriter(csv_file, fieldnames=CSV_FIELDS, extrasaction="ignore")
            writer.writeheader()
            head = {"schema": SCHEMA, "selection": summary.selection, "generated_at": summary.generated_at.isoformat()}
            json_file.write(json.dumps(head, ensure_ascii=False, default=str)[:-1] + ', "messages": [\n')
            first = True
            chunks = store.evidence_chunks(
                campaign_id=campaign_id, message_type=message_type, since=since, until=until, size=chunk_size
            )
            for chunk in chunks:
                for row in _rows(store, chunk, folder, summary):
                    writer.writerow(safe_row(_csv_row(row)))
                    json_file.write(("" if first else ",\n") + json.dumps(row, ensure_ascii=False, default=str))
                    first = False
                if progress is not None:
                    progress(len(chunk))
            json_file.write("\n]}\n")
        if not summary.messages:
            raise InputError("no message matches: nothing to put in an evidence pack")
        (folder / "summary.json").write_text(
            json.dumps(summary.as_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        (folder / "summary.txt").write_text(summary.text(), encoding="utf-8")
        _zip(folder, target, summary)
    return summary


def _rows(store: Store, chunk: list[dict[str, Any]], folder: Path, summary: PackSummary) -> Iterable[dict[str, Any]]:
    ids = [m["id"] for m in chunk]
    transitions = store.transitions_for(ids)
    attempts = store.attempts_for(ids)
    fallbacks = store.fallbacks_of(ids)
    approvals = store.approvals_of_versions([m["template_version"] for m in chunk if m["template_version"]])
    for m in chunk:
        moments: dict[str, str] = {}
        for change in transitions.get(m["id"], ()):
            moments.setdefault(change["target"], change["at"].isoformat())
        approval = approval_in_force(  # the approval in force when the message was decided
            approvals.get((m["message_type"], m["language"], m["channel"], m["template_version"])), m["decided_at"]
        )
        content, digest = _content(store, m["content"], folder, summary)
        reasons = list(m["reasons"] or [])
        late = "notice_period" in reasons
        row = {
            "message_id": m["id"],
            "recipient_id": m["recipient_id"],
            "campaign_id": m["campaign_id"],
            "message_type": m["message_type"],
            "category": m["category"],
            "decision": "allowed" if m["allowed"] else "refused",
            "reasons": reasons,
            "notes": {k: v for k, v in (m["notes"] or {}).items() if k not in NEVER},
            "legal_basis": m["legal_basis"],
            "rules_version": m["rules_version"],
            "channel": m["channel"],
            "language": m["language"],
            "country": m["country"],
            "status": m["status"],
            "decided_at": m["decided_at"].isoformat(),
            # An allowed message is queued when it is decided (that first transition is not stored again).
            "queued_at": m["decided_at"].isoformat() if m["allowed"] else None,
            "sent_at": moments.get("sent"),
            "delivered_at": moments.get("delivered"),
            "bounced_at": moments.get("bounced"),
            "failed_at": moments.get("failed") or moments.get("dead"),
            "moments": moments,
            "send_after": m["send_after"].isoformat() if m["send_after"] else None,
            "deadline": m["deadline"].isoformat() if m["deadline"] else None,
            "late_notice": late,
            "attempts": [
                {
                    "attempt": a["attempt"],
                    "outcome": a["outcome"],
                    "started_at": a["started_at"].isoformat() if a["started_at"] else None,
                    "finished_at": a["finished_at"].isoformat() if a["finished_at"] else None,
                }
                for a in attempts.get(m["id"], ())
            ],
            "fallback_of": m["fallback_of"],
            "fallbacks": fallbacks.get(m["id"], []),
            "template_version": m["template_version"],
            "template_approval": (
                {"by": approval["by"], "at": approval["at"].isoformat(), "source_version": approval["source_version"]}
                if approval
                else None
            ),
            "content_hash": digest,
            "content": content,
        }
        summary.messages += 1
        summary.by_status[m["status"]] += 1
        summary.by_decision[row["decision"]] += 1
        summary.by_channel[m["channel"] or "-"] += 1
        summary.reasons.update(reasons)
        summary.late_notices += late
        summary.fallbacks += bool(m["fallback_of"])
        if m["template_version"]:
            label = f"{m['message_type']}/{m['language']}/{m['channel']} {m['template_version']}"
            summary.template_versions[label] += 1
            if approval is None:
                summary.unapproved_versions[label] += 1
        yield row


def _content(
    store: Store, blob: bytes | None, folder: Path, summary: PackSummary
) -> tuple[dict[str, Any] | None, str | None]:
    """The row's content reference (variant and values, or a file), and the content hash."""
    stored = decode_content(blob)
    if not stored:
        return None, None
    if "v" in stored:
        variant_id = stored["v"]
        record = store.variant(variant_id)
        path = folder / "variants" / f"{variant_id}.json"
        if not path.exists():
            _write_variant(folder, variant_id, record)
            summary.variants += 1
        parts = rebuild(record, stored["t"], stored["ta"])
        reference = {"variant": variant_id, "values": dict(stored["t"]), "tidy_after": bool(stored["ta"])}
        return reference, content_hash(parts)
    parts = stored.get("parts") or {}
    digest = content_hash(parts)
    path = folder / "content" / f"{digest}.json"
    if not path.exists():
        path.write_text(json.dumps({"parts": parts}, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        summary.variants += 1
    return {"file": f"content/{digest}.json"}, digest


def _write_variant(folder: Path, variant_id: str, record: Mapping[str, Any]) -> None:
    (folder / "variants" / f"{variant_id}.json").write_text(
        json.dumps(record, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    readable = folder / "variants" / variant_id
    readable.mkdir()
    for part, spec in record.items():
        pieces = list(spec["tidied"])
        pieces[1::2] = [PERSONAL] * len(pieces[1::2])
        (readable / _safe_name(f"{part}-{spec['filename']}")).write_text("".join(pieces), encoding="utf-8")


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)


def _csv_row(row: Mapping[str, Any]) -> dict[str, Any]:
    approval = row["template_approval"] or {}
    content = row["content"] or {}
    return {
        **row,
        "reasons": ";".join(row["reasons"]),
        "late_notice": "yes" if row["late_notice"] else "no",
        "attempts": sum(a["outcome"] != "callback" for a in row["attempts"]),  # a provider's later report is no attempt
        "attempt_outcomes": ";".join(f"{a['attempt']}:{a['outcome']}" for a in row["attempts"]),
        "fallbacks": ";".join(row["fallbacks"]),
        "template_approved_by": approval.get("by"),
        "template_approved_at": approval.get("at"),
        "variant": content.get("variant") or content.get("file"),
    }


def _zip(folder: Path, target: Path, summary: PackSummary) -> None:
    """Copy every file of ``folder`` into the zip at ``target`` (hashing each), then SHA256SUMS."""
    partial = target.with_name(target.name + ".partial")
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as pack:
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                name = path.relative_to(folder).as_posix()
                digest = hashlib.sha256()
                with open(path, "rb") as source, pack.open(name, "w", force_zip64=True) as sink:
                    while block := source.read(1 << 20):
                        digest.update(block)
                        sink.write(block)
                summary.files[name] = digest.hexdigest()
            sums = "".join(f"{h}  {n}\n" for n, h in sorted(summary.files.items()))
            pack.writestr("SHA256SUMS", sums)
        partial.replace(target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise InputError(f"cannot write the evidence pack {str(target)!r}: {exc.strerror}") from None


def read_pack(path: str | Path) -> dict[str, Any]:
    """A pack's manifest, summary and variants, checked against SHA256SUMS (for tests and tools).

    Raises :class:`InputError` when a file's hash does not match.
    """
    with zipfile.ZipFile(path) as pack:
        sums = dict(
            (name, digest)
            for digest, name in (line.split("  ", 1) for line in pack.read("SHA256SUMS").decode().splitlines())
        )
        for name in pack.namelist():
            if name == "SHA256SUMS":
                continue
            if hashlib.sha256(pack.read(name)).hexdigest() != sums.get(name):
                raise InputError(f"evidence pack file {name} does not match its SHA-256")
        manifest = json.loads(pack.read("manifest.json"))
        rows = list(csv.DictReader(io.StringIO(pack.read("manifest.csv").decode("utf-8"))))
        variants = {
            Path(n).stem: json.loads(pack.read(n))
            for n in pack.namelist()
            if n.startswith("variants/") and n.endswith(".json") and n.count("/") == 1
        }
        return {
            "manifest": manifest,
            "csv": rows,
            "summary": json.loads(pack.read("summary.json")),
            "summary_text": pack.read("summary.txt").decode("utf-8"),
            "variants": variants,
            "names": pack.namelist(),
            "sums": sums,
        }


def period(start: str, end: str) -> tuple[datetime, datetime]:
    """``--from`` and ``--to`` dates (inclusive, UTC days) as ``[since, until)``."""
    from datetime import date, timedelta

    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        raise InputError("--from and --to must be dates like 2027-05-01") from None
    if last < first:
        raise InputError("--to is before --from")
    since = datetime(first.year, first.month, first.day, tzinfo=UTC)
    until = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
    return since, until


__all__ = ["CSV_FIELDS", "SCHEMA", "PackSummary", "content_hash", "period", "read_pack", "rebuild", "write_pack"]
