"""AI providers behind application/ai.py's ports: OpenAI, Perplexity (OpenAI-compatible) and
Anthropic analysts, Cohere embeddings. Each module imports its SDK (the `ai` extra installs them),
so only the providers in use are imported (entrypoints/ai.py imports them lazily, when a key is set)."""
