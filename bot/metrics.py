"""Prometheus metrics of the process: counts and latencies only, never user data in labels."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

QUESTIONS = Counter(
    "bot_questions", "Questions handled, by outcome", ["outcome"], registry=REGISTRY
)
REPLY_SECONDS = Histogram(
    "bot_reply_seconds",
    "Time to compose a reply in the core",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
    registry=REGISTRY,
)
ALERTS = Counter("bot_alerts", "Alert delivery outcomes, by kind", ["outcome"], registry=REGISTRY)
ALERT_BACKLOG = Gauge("bot_alert_backlog", "Alerts waiting in the outbox", registry=REGISTRY)
