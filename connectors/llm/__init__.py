"""LLM provider connectors: OpenAI and compatible servers, Azure OpenAI,
Anthropic, AWS Bedrock. Each implements `engine.gateway.providers.ChatProvider`."""
