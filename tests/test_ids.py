"""Message ids carry authority (VERP, unsubscribe links): a neighbour's id must not be guessable."""

import itertools

from ulid import ULID

from dispatch.ids import RANDOM_BITS, new_id


def test_ids_made_in_the_same_millisecond_are_not_a_count():
    ids = [new_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    values = [int.from_bytes(ULID.from_str(i).bytes, "big") for i in ids]
    mask = (1 << RANDOM_BITS) - 1
    same_ms = [(a, b) for a, b in itertools.pairwise(values) if a >> RANDOM_BITS == b >> RANDOM_BITS]
    assert len(same_ms) > 100  # the loop is fast enough that many share a millisecond
    # python-ulid's monotonic generator makes b == a + 1 here; fresh randomness almost never lands within 2**16.
    assert all(abs((b & mask) - (a & mask)) > 1 << 16 for a, b in same_ms)
    # About half of the 80 random bits differ between neighbours.
    flips = sum(bin((a ^ b) & mask).count("1") for a, b in same_ms) / len(same_ms)
    assert 30 < flips < 50


def test_ids_still_sort_by_the_millisecond_they_were_made_in():
    ids = [new_id() for _ in range(200)]
    stamps = [ULID.from_str(i).milliseconds for i in ids]
    assert stamps == sorted(stamps)
    assert all(len(i) == 26 and i[0] in "01234567" for i in ids)
