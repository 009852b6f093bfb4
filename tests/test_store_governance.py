"""The store's side of governance, on SQLite and PostgreSQL: approvals, versions used, evidence chunks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from test_store import row

from dispatch.errors import InputError
from dispatch.store import Store
from dispatch.store.approvals import approval_in_force

NOW = datetime(2027, 1, 11, 10, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    s = Store(url)
    yield s
    s.close()


def _ids(n: int, prefix: str = "01M9") -> list[str]:
    return [f"{prefix}{i:022d}" for i in range(n)]


def test_approvals_are_appended_and_read_back_in_order(store):
    common = {"message_type": "price_change", "language": "sv", "channel": "email", "version": "v1"}
    store.add_template_approval(action="proposed", by="Aino", at=NOW, comment="ny text", **common)
    store.add_template_approval(
        action="approved", by="Bo", at=NOW + timedelta(hours=1), source_language="fi", source_version="s1", **common
    )
    store.add_template_approval(action="proposed", by="Aino", at=NOW, **{**common, "language": "fi"})
    rows = store.template_approvals("price_change", "sv", "email")
    assert [(r["action"], r["by"], r["source_version"]) for r in rows] == [
        ("proposed", "Aino", None),
        ("approved", "Bo", "s1"),
    ]
    assert rows[0]["comment"] == "ny text" and rows[1]["at"] == NOW + timedelta(hours=1)
    assert len(store.template_approvals("price_change")) == 3
    assert [r["action"] for r in store.template_approvals("price_change", "fi")] == ["proposed"]
    store.add_template_approval(
        action="approved", by="Cy", at=NOW + timedelta(days=3), source_language="fi", source_version="s2", **common
    )
    found = store.approvals_of_versions(["v1", "v2"])
    assert list(found) == [("price_change", "sv", "email", "v1")]
    approvals = found[("price_change", "sv", "email", "v1")]
    assert [a["by"] for a in approvals] == ["Bo", "Cy"]
    assert approval_in_force(approvals, NOW) is None  # before any approval
    assert approval_in_force(approvals, NOW + timedelta(days=1))["by"] == "Bo"
    assert approval_in_force(approvals, NOW + timedelta(days=3))["by"] == "Cy"
    with pytest.raises(InputError, match="action"):
        store.add_template_approval(action="revoked", by="X", at=NOW, **common)


def test_versions_used_are_counted_with_their_first_and_last_use(store):
    ids = _ids(4)
    store.insert_messages(
        [
            row(ids[0], template_version="a", decided_at=NOW),
            row(ids[1], template_version="a", decided_at=NOW + timedelta(days=2)),
            row(ids[2], template_version="b", decided_at=NOW + timedelta(days=3)),
            row(ids[3], template_version=None, status="suppressed", allowed=False, content=None),
        ]
    )
    versions = store.template_versions("price_change")
    assert [(v["version"], v["messages"], v["first_used"], v["last_used"]) for v in versions] == [
        ("a", 2, NOW, NOW + timedelta(days=2)),
        ("b", 1, NOW + timedelta(days=3), NOW + timedelta(days=3)),
    ]
    assert store.template_versions("newsletter") == []
    assert store.message(ids[0])["template_version"] == "a"


def test_evidence_chunks_page_through_a_campaign_or_a_period_and_find_fallbacks(store):
    ids = _ids(7)
    records = [row(mid, campaign_id="may", decided_at=NOW + timedelta(hours=i)) for i, mid in enumerate(ids[:5])]
    records.append(row(ids[5], campaign_id="june", decided_at=NOW))
    records.append(row(ids[6], campaign_id="may", fallback_of=ids[1], channel="letter", decided_at=NOW))
    store.insert_messages(records)
    chunks = list(store.evidence_chunks(campaign_id="may", size=2))
    assert [len(c) for c in chunks] == [2, 2, 2]
    assert [m["id"] for c in chunks for m in c] == sorted(set(ids) - {ids[5]})
    assert "address" not in chunks[0][0]  # the recipient id names the person; the address stays out
    since, until = NOW + timedelta(hours=1), NOW + timedelta(hours=3)
    period = list(store.evidence_chunks(message_type="price_change", since=since, until=until))
    assert [m["id"] for c in period for m in c] == ids[1:3]
    assert store.fallbacks_of(ids) == {ids[1]: [ids[6]]}


def test_a_period_pages_through_messages_decided_at_the_same_moment_once_each(store):
    ids = _ids(5, "01MA")
    store.insert_messages([row(mid, decided_at=NOW) for mid in reversed(ids)])
    until = NOW + timedelta(seconds=1)
    pages = list(store.evidence_chunks(message_type="price_change", since=NOW, until=until, size=2))
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [m["id"] for p in pages for m in p] == ids
