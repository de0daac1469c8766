"""The login backoff: free tries, then a throttle that doubles up to a cap."""

from __future__ import annotations

from web.accounts import THROTTLE_AFTER, THROTTLE_FIRST, THROTTLE_MAX, throttled_until

NOW = 1_795_400_000


def test_the_first_failures_do_not_throttle() -> None:
    assert [throttled_until(n, NOW) for n in range(THROTTLE_AFTER)] == [0] * THROTTLE_AFTER


def test_the_throttle_doubles_from_the_third_failure_up_to_the_cap() -> None:
    waits = [throttled_until(n, NOW) - NOW for n in range(THROTTLE_AFTER, THROTTLE_AFTER + 10)]
    assert waits[:4] == [THROTTLE_FIRST, 2 * THROTTLE_FIRST, 4 * THROTTLE_FIRST, 8 * THROTTLE_FIRST]
    assert waits[-1] == THROTTLE_MAX == 900
    assert waits == sorted(waits)
