"""The embedded LLM gateway: resolve a model or chain, route to a deployment,
retry with backoff, fall back, break circuits, stream."""
