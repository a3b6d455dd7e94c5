"""The `oxtail-py` subcommands, one module per concern.

Each module exposes `add_parsers(sub)`: it adds its subcommands and sets `handler` on
each, a function `(args, settings) -> int` (the exit status). Modules here are imported
for every command, so they import nothing heavy at module level (never the MCP SDK).
"""
