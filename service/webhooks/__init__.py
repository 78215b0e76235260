"""Webhooks to the clinic's backend: a transactional outbox and a sender inside the service."""
