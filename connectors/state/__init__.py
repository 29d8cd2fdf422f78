"""Shared state backends: counters, locks and caches in memory or in Redis."""
