"""Providers answer chat prompts: OpenAI-compatible HTTP endpoints and the local model."""
