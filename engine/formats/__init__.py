"""Pure translations between OpenAI's wire format and other vendors' (no I/O)."""
