"""Pure attendance rules at their edges: lesson opening and deadlines (ATT-1), statuses
(ATT-1, ATT-2, ATT-5) and heartbeat verification (ATT-4). No database, no clock: ``now``
is passed in."""
from __future__ import annotations

import math
from datetime import date, datetime, timedelta, timezone

from lms.attendance import rules
from lms.clock import KST

STARTS = date(2027, 3, 2)  # a Tuesday; 15 weeks → last day 2027-06-14
SEC = timedelta(seconds=1)


# --- opening and deadlines (ATT-1) ---------------------------------------------------------

def test_lesson_opens_at_midnight_kst():
    """ATT-1 / API.md: a lesson of week w opens at 00:00 KST of starts_on + 7·(w−1), i.e.
    15:00 UTC the day before."""
    assert rules.lesson_opens_at(STARTS, 1) == datetime(2027, 3, 2, 0, 0, tzinfo=KST)
    assert rules.lesson_opens_at(STARTS, 2) == datetime(2027, 3, 8, 15, 0, tzinfo=timezone.utc)


def test_deadline_is_14_days_after_opening_except_last_week():
    """ATT-1: 14 days after opening; for the last week's lessons the end of that week
    (24:00 KST of the course's last day) — 7 days after opening, not 14."""
    assert rules.attendance_deadline(STARTS, 15, 1) == datetime(2027, 3, 16, 0, 0, tzinfo=KST)
    assert rules.attendance_deadline(STARTS, 15, 14) == rules.lesson_opens_at(STARTS, 14) + timedelta(days=14)
    last = rules.attendance_deadline(STARTS, 15, 15)
    assert rules.course_ends_on(STARTS, 15) == date(2027, 6, 14)
    assert last == datetime(2027, 6, 15, 0, 0, tzinfo=KST)
    assert last == rules.lesson_opens_at(STARTS, 15) + timedelta(days=7)
    assert last < rules.lesson_opens_at(STARTS, 15) + rules.ATTENDANCE_WINDOW


# --- statuses (ATT-1, ATT-2, ATT-5) ------------------------------------------------------------

def test_completion_at_deadline_edges():
    """ATT-1: completed at deadline −1 s → attended; exactly at the deadline → attended;
    +1 s → absent (once the deadline has passed), and the late completion never turns the
    absence into attendance, however long after."""
    d = datetime(2027, 3, 16, 0, 0, tzinfo=KST)
    after = d + timedelta(days=30)
    assert rules.lesson_status(completed_at=d - SEC, deadline=d, now=after) == rules.ATTENDED
    assert rules.lesson_status(completed_at=d, deadline=d, now=after) == rules.ATTENDED
    assert rules.lesson_status(completed_at=d + SEC, deadline=d, now=d + SEC) == rules.ABSENT
    assert rules.lesson_status(completed_at=d + SEC, deadline=d, now=after) == rules.ABSENT


def test_pending_until_the_deadline_passes():
    """ATT-2: nothing complete → pending up to and including the deadline instant, absent
    one second after."""
    d = datetime(2027, 3, 16, 0, 0, tzinfo=KST)
    assert rules.lesson_status(completed_at=None, deadline=d, now=d - SEC) == rules.PENDING
    assert rules.lesson_status(completed_at=None, deadline=d, now=d) == rules.PENDING
    assert rules.lesson_status(completed_at=None, deadline=d, now=d + SEC) == rules.ABSENT


def test_last_week_lesson_edges():
    """ATT-1 last week: completion at 23:59:59 KST of the last day counts; 1 s after 24:00
    does not, although it is well within 14 days of the lesson's opening."""
    d = rules.attendance_deadline(STARTS, 15, 15)
    late = datetime(2027, 6, 15, 0, 0, 1, tzinfo=KST)
    assert late < rules.lesson_opens_at(STARTS, 15) + rules.ATTENDANCE_WINDOW
    assert rules.lesson_status(completed_at=datetime(2027, 6, 14, 23, 59, 59, tzinfo=KST),
                               deadline=d, now=late) == rules.ATTENDED
    assert rules.lesson_status(completed_at=late, deadline=d, now=late) == rules.ABSENT


def test_excused_unless_attended():
    """ATT-5: an approved excuse makes the lesson excused — unless it was attended anyway;
    a completion after the deadline does not beat the excuse either."""
    d = datetime(2027, 3, 16, 0, 0, tzinfo=KST)
    assert rules.lesson_status(completed_at=None, deadline=d, now=d + SEC, excused=True) == rules.EXCUSED
    assert rules.lesson_status(completed_at=d - SEC, deadline=d, now=d + SEC, excused=True) == rules.ATTENDED
    assert rules.lesson_status(completed_at=d + SEC, deadline=d, now=d + SEC, excused=True) == rules.EXCUSED


# --- coverage ---------------------------------------------------------------------------------

def test_coverage_is_every_whole_second():
    """ATT-1 "100% viewed": every whole second of the lesson covered; one missing second is
    not complete."""
    merged = rules.merge_intervals([[0, 700], [701, 1500]])
    assert rules.covered_whole_seconds(merged, 1500) == 1499
    merged, covered = rules.apply_credit(merged, [[700, 701]], 1500)
    assert merged == [[0.0, 1500.0]] and covered == 1500


# --- heartbeat verification (ATT-4) ---------------------------------------------------------

def test_twenty_five_minutes_claimed_in_ten_seconds_is_not_credited():
    """ATT-4: 25 minutes of segments claimed after 10 s of real time earn 10 s × 1.0 + 2 s
    slack = 12 s; the other 1488 s are discarded as suspicious excess."""
    c = rules.credit_heartbeat(intervals=[], segments=[[0, 1500]], length=1500, elapsed_seconds=10, max_rate=1.0)
    assert c.credited == [[0.0, 12.0]]
    assert c.credited_seconds == 12.0
    assert c.excess_seconds == 1488.0
    assert rules.HEARTBEAT_SLACK == 2.0


def test_budget_scales_with_the_maximum_playback_rate():
    """ATT-4: at a maximum rate of 2.0, 10 s of real time credit 22 s."""
    c = rules.credit_heartbeat(intervals=[], segments=[[0, 100]], length=1500, elapsed_seconds=10, max_rate=2.0)
    assert c.credited_seconds == 22.0 and c.excess_seconds == 78.0


def test_overlapping_and_out_of_order_segments():
    """ATT-4: spans are credited in the order played, each only for what is not covered
    yet (already credited intervals, and earlier spans of the same heartbeat)."""
    c = rules.credit_heartbeat(intervals=[[0.0, 10.0]], segments=[[30, 40], [5, 15], [10, 20]],
                               length=1500, elapsed_seconds=30, max_rate=1.0)
    assert c.credited == [[30.0, 40.0], [10.0, 15.0], [15.0, 20.0]]
    assert c.credited_seconds == 20.0 and c.excess_seconds == 0.0
    merged, covered = rules.apply_credit([[0.0, 10.0]], c.credited, 1500)
    assert merged == [[0.0, 20.0], [30.0, 40.0]] and covered == 30
    assert c.position_seconds == 20.0  # the end of the last span played


def test_budget_is_spent_in_playing_order():
    """ATT-4: with too little budget the spans played first are credited first."""
    c = rules.credit_heartbeat(intervals=[], segments=[[100, 110], [0, 10]], length=1500,
                               elapsed_seconds=3, max_rate=1.0)
    assert c.credited == [[100.0, 105.0]]
    assert c.excess_seconds == 15.0


def test_rewatching_earns_nothing_and_is_not_excess():
    """ATT-4: playing what is already credited earns nothing and is not suspicious."""
    c = rules.credit_heartbeat(intervals=[[0.0, 600.0]], segments=[[0, 600]], length=1500,
                               elapsed_seconds=1, max_rate=1.0)
    assert c.credited == [] and c.credited_seconds == 0 and c.excess_seconds == 0


def test_segments_are_clipped_to_the_lesson():
    """ATT-4: positions past the end (or a lesson's last fraction) are clipped, not refused."""
    assert rules.clip_segments([[1490, 1600], [1600, 1700], [0, 0]], 1500) == [[1490.0, 1500.0]]
    c = rules.credit_heartbeat(intervals=[], segments=[[1490, 1600]], length=1500, elapsed_seconds=60, max_rate=1.0)
    assert c.credited == [[1490.0, 1500.0]] and c.position_seconds == 1500.0


def test_no_real_time_means_only_the_slack():
    """ATT-4: a heartbeat right after the previous one (or a clock that went backwards)
    earns at most the 2 s slack."""
    c = rules.credit_heartbeat(intervals=[], segments=[[0, 10]], length=1500, elapsed_seconds=-50, max_rate=1.0)
    assert c.credited_seconds == 2.0 and c.excess_seconds == 8.0


def test_segment_problems():
    """ATT-4: negative, NaN, infinite, non-numbers, booleans, from > to, malformed pairs,
    huge positions and too many segments are refused; an empty report and positions past
    the lesson's end (up to the sanity bound) are fine."""
    ok = [[], [[0, 10]], [[0, 0]], [[0.5, rules.MAX_SEGMENT_SECONDS]],
          [[i, i + 1] for i in range(rules.MAX_SEGMENTS_PER_HEARTBEAT)]]
    for segments in ok:
        assert rules.segment_problem(segments) is None, segments
    bad = [[[-1, 5]], [[0, -0.5]], [[math.nan, 5]], [[0, math.inf]], [[0, -math.inf]], [["0", 5]],
           [[True, 5]], [[None, 5]], [[10, 5]], [[1]], [[1, 2, 3]], [5], "0-10", None,
           [[0, rules.MAX_SEGMENT_SECONDS + 1]], [[0, 1e300]],
           [[i, i + 1] for i in range(rules.MAX_SEGMENTS_PER_HEARTBEAT + 1)]]
    for segments in bad:
        assert rules.segment_problem(segments), segments


def test_att4_segment_problem_of_integers_too_large_for_a_float():
    """ATT-4: an integer position no float can hold (JSON allows any number of digits) is
    a problem like any huge position, not an OverflowError: the API checks bodies with this
    function alone."""
    for segments in ([[0, 10 ** 400]], [[10 ** 400, 10 ** 401]], [[-(10 ** 400), 5]]):
        assert rules.segment_problem(segments), segments


def test_play_position():
    """The resume point: the end of the last span reported, inside the lesson."""
    assert rules.play_position([[0, 10], [300, 320.5]], 1500) == 320.5
    assert rules.play_position([[0, 2000]], 1500) == 1500.0
    assert rules.play_position([], 1500) is None


def test_challenge_schedule():
    """ATT-4: challenges every MIN…MAX minutes of playing, drawn uniformly; MIN 0 turns
    them off; a MAX below MIN means exactly MIN."""
    assert rules.next_challenge_after(8, 15, 0.0) == 480.0
    assert rules.next_challenge_after(8, 15, 0.999999) < 900.0
    assert 480.0 <= rules.next_challenge_after(8, 15, 0.5) <= 900.0
    assert rules.next_challenge_after(0, 15, 0.5) is None
    assert rules.next_challenge_after(5, 1, 0.7) == 300.0
    assert rules.challenge_due(played_since=480, threshold=480, pending=False, complete=False)
    assert not rules.challenge_due(played_since=479.9, threshold=480, pending=False, complete=False)
    assert not rules.challenge_due(played_since=900, threshold=480, pending=True, complete=False)
    assert not rules.challenge_due(played_since=900, threshold=480, pending=False, complete=True)
    assert not rules.challenge_due(played_since=900, threshold=None, pending=False, complete=False)


def test_view_idle_timeout():
    """REC-1: a view silent for 30 minutes has ended."""
    t = datetime(2027, 3, 2, 10, 0, tzinfo=KST)
    assert not rules.view_idle(t, t + rules.VIEW_IDLE_TIMEOUT - SEC)
    assert rules.view_idle(t, t + rules.VIEW_IDLE_TIMEOUT)


def test_timeline_length():
    """A video's timeline is its seconds; frame-based content's is its frames."""
    assert rules.timeline_length("video", 1500, None) == 1500
    assert rules.timeline_length("frames", None, 20) == 20
