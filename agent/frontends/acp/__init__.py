"""`gptoss-agent acp`: the agent inside an editor, over the Agent Client Protocol."""
