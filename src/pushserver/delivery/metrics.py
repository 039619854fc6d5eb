"""Prometheus counters of delivery outcomes."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable

from prometheus_client import Counter

from pushserver.delivery.outcomes import Outcome

DELIVERIES = Counter(
    "pushserver_deliveries_total",
    "Delivery attempts by platform and outcome (sent, retry, failed, dead_token, no_answer)",
    ["platform", "outcome"],
)


def count(results: Iterable[tuple[str, Outcome | None]]) -> None:
    tally = Tally(
        (platform, outcome.verdict.value if outcome is not None else "no_answer")
        for platform, outcome in results
    )
    for (platform, verdict), n in tally.items():
        verdict = "retry" if verdict == "reauthorize" else verdict
        DELIVERIES.labels(platform, verdict).inc(n)
