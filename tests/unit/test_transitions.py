"""subscriptions.decide: every state and event, at fixed instants, without a database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from drip.config import BUNDLED_COURSES
from drip.course import load_course
from drip.models import SubscriptionState as S
from drip.scheduler.record import event_of
from drip.scheduler.schedule import RetryPolicy
from drip.send import SendResult, SendStatus
from drip.subscriptions import ACCEPTS, Change, Event, decide

from helpers import DECIDE_NOW, Facts

COURSE = load_course(BUNDLED_COURSES / "bone-health")
NOW = DECIDE_NOW


@pytest.mark.parametrize("state", list(S))
@pytest.mark.parametrize("event", list(Event))
def test_only_the_events_a_state_accepts_change_it(state: S, event: Event) -> None:
    target = {Event.SNOOZE: 7, Event.JUMP: 2}.get(event, 0)
    change = decide(Facts(state), event, NOW, COURSE, attempt=1, retry_at=NOW, target=target)
    assert (change is not None) == (event in ACCEPTS.get(state, frozenset()))


@pytest.mark.parametrize("state", [S.COMPLETED, S.UNSUBSCRIBED, S.BOUNCED])
def test_ended_subscriptions_take_no_event(state: S) -> None:
    assert all(decide(Facts(state), event, NOW, COURSE) is None for event in Event)


def test_a_sent_lesson_makes_the_next_due_the_next_local_morning() -> None:
    change = decide(Facts(S.ACTIVE), Event.SENT, NOW, COURSE)
    assert change is not None and change.state is S.ACTIVE and change.retry_attempts == 0
    assert change.next_due_at == datetime(2026, 3, 3, 14, 0, tzinfo=UTC)  # 09:00 New York


def test_the_last_lesson_completes_the_course() -> None:
    facts = Facts(S.ACTIVE, current_day=COURSE.total_days - 1)
    change = decide(facts, Event.SENT, NOW, COURSE)
    assert change is not None
    assert (change.state, change.next_due_at, change.ended_at) == (S.COMPLETED, None, NOW)


def test_given_up_is_failed_and_only_a_retry_revives_it() -> None:
    gave_up = decide(Facts(S.ACTIVE), Event.GAVE_UP, NOW, COURSE, attempt=9)
    assert gave_up is not None
    assert (gave_up.state, gave_up.next_due_at, gave_up.retry_attempts) == (S.FAILED, None, 9)
    failed = Facts(S.FAILED)
    assert decide(failed, Event.RESCHEDULE, NOW, COURSE) is None, "a new time revived it"
    assert decide(failed, Event.RESUME, NOW, COURSE) is None
    retried = decide(failed, Event.RETRY, NOW, COURSE)
    assert retried is not None
    assert (retried.state, retried.next_due_at, retried.retry_attempts) == (S.ACTIVE, NOW, 0)


def test_resume_never_sends_two_lessons_on_one_local_day() -> None:
    sent_this_morning = Facts(S.PAUSED, last_sent_at=NOW - timedelta(hours=1))
    change = decide(sent_this_morning, Event.RESUME, NOW, COURSE)
    assert change is not None and change.next_due_at == datetime(2026, 3, 3, 14, tzinfo=UTC)
    never_sent = replace(sent_this_morning, last_sent_at=None)
    resumed = decide(never_sent, Event.RESUME, NOW, COURSE)
    assert resumed is not None and resumed.next_due_at == NOW


def test_confirm_and_unsubscribe_stamp_their_time() -> None:
    confirmed = decide(Facts(S.PENDING, current_day=0), Event.CONFIRM, NOW, COURSE)
    assert confirmed is not None
    assert (confirmed.state, confirmed.next_due_at, confirmed.confirmed_at) == (S.ACTIVE, NOW, NOW)
    ended = decide(Facts(S.PAUSED), Event.UNSUBSCRIBE, NOW, COURSE)
    assert ended is not None and (ended.state, ended.ended_at) == (S.UNSUBSCRIBED, NOW)


def test_the_retry_decision_defers_until_the_backoff_is_used_up() -> None:
    policy = RetryPolicy(base=timedelta(minutes=1), ceiling=timedelta(hours=1),
                         give_up=timedelta(hours=3))  # fmt: skip
    temporary = SendResult(SendStatus.TEMPORARY, "451 try later")
    events = [event_of(temporary, attempt, policy) for attempt in range(1, 12)]
    first_give_up = events.index(Event.GAVE_UP) + 1
    assert set(events[: first_give_up - 1]) == {Event.DEFERRED}
    assert policy.exhausted(first_give_up) and not policy.exhausted(first_give_up - 1)
    assert event_of(SendResult(SendStatus.SENT, "250 ok"), 1, policy) is Event.SENT
    assert event_of(SendResult(SendStatus.PERMANENT, "550 no"), 1, policy) is Event.BOUNCED


# The learner's pace actions


def test_next_now_is_due_at_once_and_ends_a_snooze() -> None:
    facts = Facts(S.ACTIVE, snoozed_until=NOW + timedelta(days=3))
    change = decide(facts, Event.NEXT_NOW, NOW, COURSE)
    assert change == Change(S.ACTIVE, NOW, retry_attempts=0, clear_snooze=True)
    assert change.columns()["snoozed_until"] is None


def test_no_next_lesson_after_the_last() -> None:
    facts = Facts(S.ACTIVE, current_day=COURSE.total_days)
    assert decide(facts, Event.NEXT_NOW, NOW, COURSE) is None


@pytest.mark.parametrize("state", [S.ACTIVE, S.PAUSED, S.FAILED])
def test_restart_and_jump_move_the_learner_and_send_at_once(state: S) -> None:
    restart = decide(Facts(state, current_day=5), Event.RESTART, NOW, COURSE)
    assert restart is not None and restart.columns()["current_day"] == 0
    assert (restart.state, restart.next_due_at) == (S.ACTIVE, NOW)
    jump = decide(Facts(state, current_day=5), Event.JUMP, NOW, COURSE, target=3)
    assert jump is not None and jump.columns()["current_day"] == 2


@pytest.mark.parametrize("target", [0, -1, COURSE.total_days + 1])
def test_a_jump_outside_the_course_does_nothing(target: int) -> None:
    assert decide(Facts(S.ACTIVE), Event.JUMP, NOW, COURSE, target=target) is None


def test_a_snooze_keeps_lessons_away_for_its_days_then_the_usual_morning() -> None:
    change = decide(Facts(S.ACTIVE), Event.SNOOZE, NOW, COURSE, target=7)
    assert change is not None and change.state is S.ACTIVE
    nine_in_new_york = datetime(2026, 3, 9, 13, 0, tzinfo=UTC)  # DST began on 8 March
    assert change.next_due_at == change.snoozed_until == nine_in_new_york


@pytest.mark.parametrize("days", [0, 91])
def test_a_snooze_of_no_days_or_too_many_does_nothing(days: int) -> None:
    assert decide(Facts(S.ACTIVE), Event.SNOOZE, NOW, COURSE, target=days) is None


def test_a_new_time_of_day_keeps_the_snooze() -> None:
    until = NOW + timedelta(days=6)
    change = decide(Facts(S.ACTIVE, snoozed_until=until), Event.RESCHEDULE, NOW, COURSE)
    assert change is not None and change.next_due_at == until
    resumed = decide(Facts(S.PAUSED, snoozed_until=until), Event.RESUME, NOW, COURSE)
    assert resumed is not None and resumed.next_due_at == until


def test_retry_now_tries_only_a_deferred_lesson_early() -> None:
    deferred = Facts(S.ACTIVE, retry_attempts=2)
    change = decide(deferred, Event.RETRY_NOW, NOW, COURSE)
    assert change is not None and (change.state, change.next_due_at) == (S.ACTIVE, NOW)
    assert change.retry_attempts is None, "the attempts so far still count towards giving up"
    assert decide(Facts(S.ACTIVE, retry_attempts=0), Event.RETRY_NOW, NOW, COURSE) is None


@pytest.mark.parametrize("state", [S.ACTIVE, S.PAUSED, S.FAILED])
def test_move_makes_lesson_n_next_at_the_next_send_time(state: S) -> None:
    change = decide(Facts(state), Event.MOVE, NOW, COURSE, lesson=5)
    assert change is not None and change.current_day == 4 and change.retry_attempts == 0
    if state is S.PAUSED:
        assert (change.state, change.next_due_at) == (S.PAUSED, None)
    else:  # NOW is 09:00 in New York, the course's send time, a day after the last lesson
        assert change.state is S.ACTIVE and change.next_due_at == NOW
    later = decide(Facts(S.ACTIVE), Event.MOVE, NOW + timedelta(hours=1), COURSE, lesson=5)
    assert later is not None and later.next_due_at == NOW + timedelta(days=1), "no burst"


def test_resend_sends_lesson_n_now_and_nothing_outside_the_course() -> None:
    change = decide(Facts(S.ACTIVE, current_day=3), Event.RESEND, NOW, COURSE)
    assert change is not None and (change.state, change.next_due_at) == (S.ACTIVE, NOW)
    assert change.current_day == 2, "by default the last lesson sent goes out again"
    for lesson in (0, COURSE.total_days + 1, -3):
        assert decide(Facts(S.ACTIVE), Event.RESEND, NOW, COURSE, lesson=lesson) is None
        assert decide(Facts(S.ACTIVE), Event.MOVE, NOW, COURSE, lesson=lesson) is None
    assert decide(Facts(S.ACTIVE), Event.MOVE, NOW, None, lesson=2) is None
