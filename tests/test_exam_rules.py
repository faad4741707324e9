"""Pure exam rules at their edges (EXM-2…5, EXM-7, EXM-11, EXM-12; EXM-9 address rule)."""
from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta

import pytest

from lms.clock import KST
from lms.exams import rules
from lms.proctoring import rules as prules

OPENS = datetime(2027, 4, 20, 9, 0, tzinfo=KST)
LEVELS = ("easy", "medium", "hard")
BANK = {"easy": 6, "medium": 6, "hard": 6}
IPD = {"easy": 2, "medium": 2, "hard": 2}


def problems(**over):
    args = dict(kind="midterm", opens_at=OPENS, closes_at=OPENS + timedelta(days=3), duration_minutes=60,
                items_per_difficulty=IPD, levels=LEVELS, bank_counts=BANK,
                announced_at=OPENS - timedelta(days=14), period=None)
    args.update(over)
    return rules.exam_problems(**args)


def rule_ids(ps):
    return sorted({p.rule for p in ps})


def test_a_valid_exam_breaks_nothing():
    assert problems() == []


# EXM-2 -----------------------------------------------------------------------------------------

def test_exm2_window_of_4_kst_calendar_days_is_allowed_5_is_not():
    # opens 09:00 on day 1; closing at 23:59:59 of day 4 touches 4 days; 00:00:01 of day 5 touches 5
    day4_end = datetime(2027, 4, 23, 23, 59, 59, tzinfo=KST)
    assert problems(closes_at=day4_end) == []
    assert problems(closes_at=datetime(2027, 4, 24, 0, 0, tzinfo=KST)) == []  # closes as day 5 begins
    p = problems(closes_at=datetime(2027, 4, 24, 0, 0, 1, tzinfo=KST))
    assert rule_ids(p) == ["EXM-2"] and p[0].details["days"] == 5


def test_exm2_calendar_days_are_kst_not_utc():
    # 2027-04-20 23:30 KST = 14:30 UTC; a window to 2027-04-23 23:30 KST is 4 KST days
    # (in UTC it would also be 4, but starting 00:30 KST the UTC dates differ)
    opens = datetime(2027, 4, 20, 0, 30, tzinfo=KST)  # 2027-04-19 15:30 UTC
    assert rules.window_days(opens, datetime(2027, 4, 23, 23, 0, tzinfo=KST)) == 4
    assert rules.window_days(opens, datetime(2027, 4, 24, 0, 30, tzinfo=KST)) == 5


def test_exm2_window_must_close_after_it_opens():
    assert rule_ids(problems(closes_at=OPENS)) == ["EXM-2"]


def test_exm2_window_inside_the_syllabus_period():
    period = (date(2027, 4, 20), date(2027, 4, 23))
    assert problems(period=period) == []
    assert rule_ids(problems(period=period, closes_at=datetime(2027, 4, 24, 0, 0, 1, tzinfo=KST))) == ["EXM-2"]
    before = problems(period=(date(2027, 4, 21), date(2027, 4, 24)))
    assert rule_ids(before) == ["EXM-2"] and "period" in before[0].details


# EXM-3 -----------------------------------------------------------------------------------------

def test_exm3_three_levels_drawn_two_are_not_enough():
    big = {"easy": 9, "medium": 9, "hard": 9}
    assert rule_ids(problems(items_per_difficulty={"easy": 3, "medium": 3, "hard": 0}, bank_counts=big)) == ["EXM-3"]
    assert rule_ids(problems(items_per_difficulty={"easy": 3, "medium": 3}, bank_counts=big)) == ["EXM-3"]
    assert problems(items_per_difficulty={"easy": 1, "medium": 1, "hard": 1}) == []


def test_exm3_unknown_level_is_named():
    p = problems(items_per_difficulty={**IPD, "extreme": 1})
    assert "EXM-3" in rule_ids(p)


def test_exm3_an_institution_may_add_levels():
    levels = ("easy", "medium", "hard", "expert")
    assert problems(levels=levels, items_per_difficulty={**IPD, "expert": 1},
                    bank_counts={**BANK, "expert": 3}) == []


# EXM-4 -----------------------------------------------------------------------------------------

def test_exm4_60_minutes_allowed_61_refused():
    assert problems(duration_minutes=60) == []
    p = problems(duration_minutes=61)
    assert rule_ids(p) == ["EXM-4"]


def test_exm4_deadline_60_minutes_and_90_for_the_disability_flag():
    start = OPENS
    close = OPENS + timedelta(days=3)
    assert rules.attempt_deadline(start, 60, False, close) == start + timedelta(minutes=60)
    assert rules.attempt_deadline(start, 60, True, close) == start + timedelta(minutes=90)
    assert rules.attempt_deadline(start, 40, True, close) == start + timedelta(minutes=60)
    # never beyond 60 / 90 even if a stored duration were larger
    assert rules.attempt_deadline(start, 61, False, close) == start + timedelta(minutes=60)
    assert rules.attempt_deadline(start, 100, True, close) == start + timedelta(minutes=90)


def test_exm4_deadline_never_after_the_window_closes():
    close = OPENS + timedelta(minutes=30)
    assert rules.attempt_deadline(OPENS, 60, False, close) == close
    assert rules.attempt_deadline(OPENS, 60, True, close) == close


# EXM-5 -----------------------------------------------------------------------------------------

def test_exm5_bank_of_exactly_3x_allowed_3x_minus_one_refused():
    assert problems(bank_counts={"easy": 6, "medium": 6, "hard": 6}) == []
    p = problems(bank_counts={"easy": 6, "medium": 5, "hard": 6})
    assert rule_ids(p) == ["EXM-5"]
    assert p[0].details["levels"] == {"medium": {"drawn": 2, "available": 5, "needed": 6}}


# EXM-7 -----------------------------------------------------------------------------------------

def test_exm7_announced_14_days_before_allowed_13d_23h59_refused():
    assert problems(announced_at=OPENS - timedelta(days=14)) == []
    p = problems(announced_at=OPENS - timedelta(days=13, hours=23, minutes=59))
    assert rule_ids(p) == ["EXM-7"]
    assert rule_ids(problems(announced_at=OPENS - timedelta(days=14) + timedelta(seconds=1))) == ["EXM-7"]


def test_every_broken_rule_is_named_at_once():
    p = problems(closes_at=OPENS + timedelta(days=5), items_per_difficulty={"easy": 3, "medium": 3},
                 duration_minutes=90, announced_at=OPENS, bank_counts={"easy": 1})
    assert rule_ids(p) == ["EXM-2", "EXM-3", "EXM-4", "EXM-5", "EXM-7"]


# draws (EXM-3) ----------------------------------------------------------------------------------

POOLS = {"easy": list(range(1, 31)), "medium": list(range(31, 61)), "hard": list(range(61, 91))}
COUNTS = {"easy": 3, "medium": 4, "hard": 5}
CHOICES = {i: 4 for i in range(1, 91)}


def test_exm3_draw_counts_per_difficulty_exact_no_item_twice():
    d = rules.draw("seed-1", POOLS, COUNTS, CHOICES)
    ids = [i for i, _ in d]
    assert len(ids) == 12 and len(set(ids)) == 12
    for level, n in COUNTS.items():
        assert len([i for i in ids if i in POOLS[level]]) == n
    for _i, order in d:
        assert sorted(order) == [0, 1, 2, 3]


def test_exm3_same_seed_reproduces_the_draw_other_seeds_differ():
    assert rules.draw("abc", POOLS, COUNTS, CHOICES) == rules.draw("abc", POOLS, COUNTS, CHOICES)
    # pool order does not matter (sorted inside)
    shuffled = {k: list(reversed(v)) for k, v in POOLS.items()}
    assert rules.draw("abc", shuffled, COUNTS, CHOICES) == rules.draw("abc", POOLS, COUNTS, CHOICES)
    sets = {frozenset(i for i, _ in rules.draw(f"s{n}", POOLS, COUNTS, CHOICES)) for n in range(20)}
    assert len(sets) == 20


def test_exm3_draw_is_pinned_for_a_fixed_seed_and_bank():
    """Stored seeds must keep reproducing their attempts' draws (the inspectors' draw-check
    recomputes them): the draw of a fixed seed and bank, as the code of 2026-12 gives it."""
    pools = {"easy": [31, 5, 17, 8, 42, 11], "medium": [60, 12, 29, 44, 3, 21, 9], "hard": [70, 71, 72, 73, 74, 75]}
    choices = {i: (4 if i % 3 else 0) for p in pools.values() for i in p}
    choices[44] = 5
    assert rules.draw("0123456789abcdef0123456789abcdef", pools, {"easy": 2, "medium": 3, "hard": 2}, choices) == [
        (21, None), (29, [1, 2, 3, 0]), (70, [2, 1, 3, 0]), (60, None), (31, [3, 1, 2, 0]), (17, [3, 0, 2, 1]),
        (74, [2, 3, 0, 1])]
    assert rules.draw("fixed-seed", pools, {"easy": 6, "medium": 1, "hard": 0}, choices) == [
        (8, [2, 1, 3, 0]), (11, [2, 0, 3, 1]), (5, [1, 3, 2, 0]), (42, None), (31, [3, 2, 1, 0]), (9, None),
        (17, [0, 2, 3, 1])]


def test_exm3_draw_refuses_a_pool_too_small():
    with pytest.raises(ValueError):
        rules.draw("x", {"easy": [1, 2]}, {"easy": 3}, {})


# answers and scoring (EXM-12) -------------------------------------------------------------------

@pytest.mark.parametrize("kind,n,value,ok", [
    ("single_choice", 4, 0, True), ("single_choice", 4, 3, True), ("single_choice", 4, 4, False),
    ("single_choice", 4, -1, False), ("single_choice", 4, True, False), ("single_choice", 4, "1", False),
    ("single_choice", 4, 1.0, False), ("multiple_choice", 4, [0, 2], True), ("multiple_choice", 4, [0, 0], False),
    ("multiple_choice", 4, [5], False), ("multiple_choice", 4, 1, False), ("multiple_choice", 4, [], True),
    ("short_answer", 0, "서울", True), ("short_answer", 0, "x" * 1001, False), ("short_answer", 0, 3, False),
    ("essay", 0, "긴 답", True), ("essay", 0, "a\x00b", False), ("essay", 0, ["x"], False),
    ("single_choice", 4, None, True),
])
def test_answer_shapes(kind, n, value, ok):
    assert (rules.answer_problem(kind, n, value) is None) is ok


def test_scoring_objective_items_all_or_nothing():
    assert rules.score_answer("single_choice", 2, 2, 3) == 3.0
    assert rules.score_answer("single_choice", 2, 1, 3) == 0.0
    assert rules.score_answer("multiple_choice", [0, 2], [2, 0], 4) == 4.0
    assert rules.score_answer("multiple_choice", [0, 2], [0], 4) == 0.0
    assert rules.score_answer("short_answer", ["서울", "Seoul"], "  seoul ", 2) == 2.0
    assert rules.score_answer("short_answer", ["서울"], "ＳＥＯＵＬ", 2) == 0.0
    assert rules.score_answer("short_answer", ["Seoul"], "ＳＥＯＵＬ", 2) == 2.0  # NFKC
    assert rules.score_answer("single_choice", 2, None, 3) == 0.0
    assert rules.score_answer("essay", None, "답", 10) is None


def test_shown_choice_order_maps_to_original():
    order = [2, 0, 3, 1]  # shown index → original index
    assert rules.to_original("single_choice", 0, order) == 2
    assert rules.to_original("multiple_choice", [0, 3], order) == [1, 2]
    assert rules.to_original("essay", "x", None) == "x"


def test_exm12_items_need_a_key_or_model_answer():
    ok = rules.item_problems("single_choice", "easy", LEVELS, "문항", ["a", "b"], 1, None, None, 2)
    assert ok == []
    assert rules.item_problems("single_choice", "easy", LEVELS, "문항", ["a", "b"], None, None, None, 2)
    assert rules.item_problems("essay", "hard", LEVELS, "문항", None, None, None, "rubric", 10)
    assert rules.item_problems("essay", "hard", LEVELS, "문항", None, None, "model", None, 10)
    assert rules.item_problems("essay", "hard", LEVELS, "문항", None, None, "model", "rubric", 10) == []
    assert rules.item_problems("short_answer", "easy", LEVELS, "문항", None, [], None, None, 1)
    assert rules.item_problems("single_choice", "nope", LEVELS, "문항", ["a", "b"], 0, None, None, 1)
    assert rules.item_problems("single_choice", "easy", LEVELS, "문항", ["a", "b"], 0, None, None, float("nan"))


# EXM-11 ----------------------------------------------------------------------------------------

def test_exm11_makeup_window_is_5_days_from_approval():
    approved = datetime(2027, 4, 26, 10, 0, tzinfo=KST)
    opens, closes = rules.makeup_window(approved)
    assert opens == approved and closes == approved + timedelta(days=5)
    assert rules.MAKEUP_GRADE_CAP == "B+"


# EXM-9 address rule and Safe Exam Browser --------------------------------------------------------

def test_exm9_address_conflict():
    same = prules.AddressUse(learner_id=2, exam_id=1, same_exam=True, running=False)
    running_elsewhere = prules.AddressUse(learner_id=3, exam_id=9, same_exam=False, running=True)
    mine = prules.AddressUse(learner_id=1, exam_id=1, same_exam=True, running=True)
    assert prules.address_conflict(1, [same], excepted=False) == same
    assert prules.address_conflict(1, [running_elsewhere], excepted=False) == running_elsewhere
    assert prules.address_conflict(1, [mine], excepted=False) is None
    assert prules.address_conflict(1, [same, running_elsewhere], excepted=True) is None
    finished_elsewhere = prules.AddressUse(learner_id=3, exam_id=9, same_exam=False, running=False)
    assert prules.address_conflict(1, [finished_elsewhere], excepted=False) is None


def test_exm9_seb_config_key_hash():
    url, key = "https://lms.example/api/v1/exams/1/attempts", "k" * 32
    good = hashlib.sha256((url + key).encode()).hexdigest()
    assert prules.seb_header_ok(url, key, good)
    assert prules.seb_header_ok(url, key, good.upper())
    assert not prules.seb_header_ok(url + "?x", key, good)
    assert not prules.seb_header_ok(url, key, None)
    assert not prules.seb_header_ok(url, None, good)


def test_exam_window_state_edges():
    """The window is [opens_at, closes_at): open at its first instant, closed at its last."""
    close = OPENS + timedelta(days=3)
    tick = timedelta(microseconds=1)
    assert rules.window_state(OPENS - tick, OPENS, close) == rules.UPCOMING
    assert rules.window_state(OPENS, OPENS, close) == rules.OPEN and rules.exam_open(OPENS, OPENS, close)
    assert rules.window_state(close - tick, OPENS, close) == rules.OPEN
    assert rules.window_state(close, OPENS, close) == rules.CLOSED and not rules.exam_open(close, OPENS, close)


def test_spreadsheet_cells_never_start_a_formula():
    from lms.spreadsheet import safe_text

    for risky in ("=1+1", "+82", "-3", "@SUM(A1)", "\tx", "\rx"):
        assert safe_text(risky) == "'" + risky
    assert safe_text("홍길동") == "홍길동" and safe_text("") == ""
