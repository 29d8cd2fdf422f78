"""Credential sources: environment, mounted files, Vault KV v2, AWS Secrets Manager."""
