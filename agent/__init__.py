"""gptoss-agent: an offline-first coding agent that embeds llama.cpp and speaks Harmony natively."""

__version__ = "0.1.0"
