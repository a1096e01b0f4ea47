"""Retries: which answers are worth another attempt, and the exponential back-off between attempts. Pure.

A 2xx is delivered. A 4xx other than 408 and 429 is the provider refusing this message (bad number, bad
payload, unauthorised): permanent, with its reason. 408, 429, 5xx, timeouts and refused or broken
connections are retried with exponential back-off, bounded both in attempts and in total waiting time.
"""

from __future__ import annotations

from dataclasses import dataclass

SENT = "sent"
RETRY = "retry"
PERMANENT = "permanent"


def classify(status: int) -> str:
    """sent | retry | permanent for an HTTP status."""
    if 200 <= status < 300:
        return SENT
    if status in (408, 429) or status >= 500:
        return RETRY
    return PERMANENT


@dataclass(frozen=True)
class Backoff:
    """`max_attempts` attempts at most; between them base x factor^n seconds, capped at `cap_s` each, and
    never more than `max_total_s` of waiting in all (the last waits are cut to fit)."""

    max_attempts: int = 8
    base_s: float = 0.1
    factor: float = 2.0
    cap_s: float = 5.0
    max_total_s: float = 30.0

    def schedule(self) -> list[float]:
        """The waits before attempt 2, 3, ... max_attempts: len = max_attempts - 1, sum <= max_total_s."""
        waits: list[float] = []
        left = self.max_total_s
        for n in range(max(self.max_attempts - 1, 0)):
            wait = min(self.cap_s, self.base_s * self.factor**n, left)
            if wait <= 0:
                break
            waits.append(wait)
            left -= wait
        return waits
