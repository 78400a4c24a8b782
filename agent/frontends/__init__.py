"""The faces of the agent: command line, headless printers, TUI, batch, Python API and ACP.

Each front-end talks to the runtime (agent.runtime), never to a tool module directly."""
