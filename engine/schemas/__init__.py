"""Pydantic models of the public resources, validated once at the edge."""
