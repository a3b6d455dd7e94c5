"""oxtail-py: daemon-less coordination for parallel AI coding agents.

The plain-Python core: `oxtail_py.agent.Agent` (every tool's logic),
`oxtail_py.mailbox.Mailbox`, `oxtail_py.registry.Registry`, `oxtail_py.layout.Layout`.
The MCP server (`oxtail_py.server`) is a thin adapter over them. Nothing is imported
here: the hook helper must start fast, so callers import the module they need.
"""

__version__ = "0.1.0"
