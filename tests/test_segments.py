"""SMS segment counting under GSM 03.38 and UCS-2."""

from __future__ import annotations

from dispatch.segments import count_segments, non_gsm_characters


def test_gsm7_single_and_multi_segment_limits():
    assert count_segments("a" * 160).segments == 1
    assert count_segments("a" * 161).segments == 2
    assert count_segments("a" * 306).segments == 2
    assert count_segments("a" * 307).segments == 3
    assert count_segments("").segments == 0


def test_euro_sign_counts_twice():
    assert count_segments("€" * 80).units == 160
    assert count_segments("€" * 80).segments == 1
    assert count_segments("a" + "€" * 80).segments == 2
    assert count_segments("Hinta 8,90 €").encoding == "GSM-7"


def test_an_escape_pair_is_not_split_across_segments():
    text = "a" * 152 + "€" + "a" * 10  # the € would straddle septets 153/154
    assert count_segments(text).units == 164
    assert count_segments(text).segments == 2
    assert count_segments("a" * 152 + "€" + "a" * 153).segments == 3


def test_nordic_letters_stay_gsm7_but_others_switch_to_ucs2():
    assert count_segments("Hyvä asiakas, sähkön hinta muuttuu. Åsa, Ørjan").encoding == "GSM-7"
    ucs = count_segments("Price – “new”")
    assert ucs.encoding == "UCS-2"
    assert count_segments("x" * 70 + "–").segments == 2
    assert count_segments("x" * 69 + "–").segments == 1
    assert non_gsm_characters("a – b “c”") == ["–", "“", "”"]


def test_a_character_outside_the_bmp_is_never_split_across_ucs2_segments():
    text = "x" * 66 + "😀" + "x" * 10  # the emoji would straddle units 67 and 68
    assert count_segments(text).units == 78
    assert count_segments(text).segments == 2
    assert count_segments("x" * 67 + "😀" * 34).segments == 3  # 67 | 33 pairs = 66 | 1 pair
