"""The model layer: from GGUF bytes and Harmony tokens to parsed messages, and the backends that sample."""
