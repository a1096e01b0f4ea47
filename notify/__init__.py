"""Notifications: one message per (case, contact, tier) through an outbox in the store to a gateway.

Pure core (`messages`, `backoff`), store adapter (`outbox`), delivery journal (`journal`), gateways
(`gateways`: webhook, file, Kafka) and the sender that ties them together (`sender`, `cohort`).
"""
