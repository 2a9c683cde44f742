"""Topic subscriptions and the reliable delivery of new events as alerts."""
