"""Webhooks: subscriptions, signed deliveries with retries, delivery attempts."""
