"""LLM router: pick the best model in a pool for each prompt, ask it, explain why."""
