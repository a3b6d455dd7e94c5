"""oxtail-py: daemon-less coordination for parallel AI coding agents.

The plain-Python core a caller may import; the MCP server (`oxtail_py.server`)
is a thin adapter over it.
"""

from oxtail_py.errors import OxtailError
from oxtail_py.layout import Layout
from oxtail_py.mailbox import Delivery, Mailbox
from oxtail_py.messages import Message
from oxtail_py.registry import Registry, SessionEntry

__version__ = "0.1.0"

__all__ = [
    "Delivery",
    "Layout",
    "Mailbox",
    "Message",
    "OxtailError",
    "Registry",
    "SessionEntry",
    "__version__",
]
