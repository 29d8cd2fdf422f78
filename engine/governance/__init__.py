"""Governance: API keys, teams, permissions, rate limits and budgets."""
