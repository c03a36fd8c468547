"""Delivery: the transactional outbox, its worker and the guarded callback sender."""
