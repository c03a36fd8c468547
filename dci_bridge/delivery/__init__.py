"""Durable delivery of callbacks: outbox, worker, retry schedule, sender with SSRF guard."""
