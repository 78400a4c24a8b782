"""Every prompt text the model sees, as files; read them with `agent.prompts.load`."""
