"""What a scripted model server shares across wire formats.

A scripted model stands in for the LLM behind a real client. Each "turn" request (the client
asking the model what to do next in the conversation) is answered by a test's script: a
function from the request to a Reply (text, tool calls, or both). Every request the client
sends is recorded, parsed, so tests can assert what the agent's context contained. Requests
that are not conversation turns (title generation, token counting, probes) are answered by
the wire format's own code and never reach the script, so a scenario's logic stays about the
conversation.

The server is a stdlib ThreadingHTTPServer on 127.0.0.1:<ephemeral> in a daemon thread of the
pytest process, which must itself run inside the loopback-only namespace.
"""

from __future__ import annotations

import json
import threading
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Generic, TypeVar

from .wait import wait_until

DEFAULT_WAIT: Final = 30.0


@dataclass(frozen=True)
class Text:
    """The model answers with assistant text."""

    text: str


@dataclass(frozen=True)
class ToolCall:
    """The model calls a tool.

    `name` is the tool as the client offers it (Claude: `Bash`, `mcp__oxtail__send`; Codex:
    `exec_command`). For MCP tools prefer `ToolCall.mcp(server, tool, ...)`: each wire format
    renders it the way its client expects (Claude: one name `mcp__<server>__<tool>`; Codex:
    namespace `mcp__<server>` + name `<tool>`), so one scenario serves both clients.
    """

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    mcp_server: str | None = None
    # Codex only: a FREEFORM tool (`apply_patch` of models whose metadata says
    # apply_patch_tool_type "freeform") takes raw text, sent as a `custom_tool_call`.
    freeform_input: str | None = None

    @classmethod
    def freeform(cls, name: str, text: str) -> ToolCall:
        return cls(name=name, freeform_input=text)

    @classmethod
    def mcp(cls, server: str, tool: str, arguments: Mapping[str, Any] | None = None) -> ToolCall:
        return cls(name=tool, arguments=dict(arguments or {}), mcp_server=server)


Block = Text | ToolCall
# A reply is one block or several in order (e.g. text then a tool call, or parallel calls).
Reply = Block | Sequence[Block]


def blocks_of(reply: Reply) -> list[Block]:
    return [reply] if isinstance(reply, (Text, ToolCall)) else list(reply)


@dataclass(frozen=True)
class SeenToolCall:
    """A tool call found in the conversation history a client sent back."""

    call_id: str
    name: str
    arguments: Any
    namespace: str | None = None


@dataclass(frozen=True)
class SeenToolResult:
    """A tool result found in the conversation history; `output` flattened to text."""

    call_id: str
    output: str
    is_error: bool = False


def iter_strings(value: Any) -> Iterator[str]:
    """Every string anywhere in a parsed JSON value (keys excluded)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from iter_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from iter_strings(item)


def flatten_text(value: Any) -> str:
    """The text of a content value: a string, a content block (`text`, or nested
    `content`), or a list of them joined by newlines. Block types and ids are not text."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        if isinstance(value.get("text"), str):
            return str(value["text"])
        return flatten_text(value.get("content"))
    if isinstance(value, list):
        return "\n".join(text for text in map(flatten_text, value) if text)
    return ""


@dataclass
class ModelRequest(ABC):
    """One HTTP request a client sent to the scripted model, parsed.

    `kind` is "turn" for a conversation turn the script answered, otherwise the name of the
    side request (e.g. "title", "count_tokens", "probe"). `reply` is what the script answered.
    """

    index: int
    method: str
    path: str
    headers: Mapping[str, str]
    body: Any
    kind: str = "turn"
    reply: list[Block] | None = None

    @property
    def is_turn(self) -> bool:
        return self.kind == "turn"

    @property
    def session_id(self) -> str | None:
        """The client's session: Claude's X-Claude-Code-Session-Id, Codex's session-id
        (= the thread id; a Codex title request has its own)."""
        return self.headers.get("x-claude-code-session-id") or self.headers.get("session-id")

    def contains(self, needle: str) -> bool:
        """True when `needle` occurs in any string of the request body: system prompt,
        every message, tool results, hook-injected system messages, tool descriptions."""
        return any(needle in text for text in iter_strings(self.body))

    def context_contains(self, needle: str) -> bool:
        """Like `contains` but only the conversation and instructions, not the tool list
        (tool descriptions could mention anything)."""
        return any(needle in text for text in self.context_texts())

    @abstractmethod
    def context_texts(self) -> list[str]:
        """Every text of the conversation and instructions, in order."""

    @abstractmethod
    def user_texts(self) -> list[str]:
        """Texts of user-role messages, tool results excluded."""

    @abstractmethod
    def system_texts(self) -> list[str]:
        """System prompt / instructions and system- or developer-role messages."""

    @abstractmethod
    def tool_names(self) -> list[str]:
        """Names of the tools offered, MCP tools as `mcp__<server>__<tool>` for both wires."""

    @abstractmethod
    def tool_calls(self) -> list[SeenToolCall]:
        """Tool calls the model made earlier in this conversation, in order."""

    @abstractmethod
    def tool_results(self) -> list[SeenToolResult]:
        """Tool results in this conversation, in order."""

    @abstractmethod
    def ends_with_tool_result(self) -> bool:
        """True when the model is being asked to continue after tool results (not after a
        new user message). Hook context may follow the result, so this is about the last
        non-system item, not the last item."""

    def result_of(self, tool: str) -> SeenToolResult | None:
        """The latest result of a call to `tool` (a name as in `tool_names`)."""
        names = {call.call_id: call for call in self.tool_calls()}
        for result in reversed(self.tool_results()):
            call = names.get(result.call_id)
            if call is not None and _full_name(call) == tool:
                return result
        return None

    def last_user_text(self) -> str | None:
        texts = self.user_texts()
        return texts[-1] if texts else None


def _full_name(call: SeenToolCall) -> str:
    if call.namespace:
        return f"{call.namespace}__{call.name}"
    return call.name


R = TypeVar("R", bound=ModelRequest)
Script = Callable[[R], Reply]


class ScriptError(AssertionError):
    """The scenario script raised or returned nothing usable; raised again in the test."""


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 with Content-Length or chunked bodies keeps the clients' connection pools
    # happy; close-delimited bodies work too but make some clients reconnect noisily.
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        self.server.owner.handle(self)

    do_GET = do_POST
    do_HEAD = do_POST
    do_PUT = do_POST
    do_DELETE = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        # Requests are recorded in the owner; stderr lines would only clutter pytest output.
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: ModelServer[Any]


class ModelServer(ABC, Generic[R]):
    """A scripted model on 127.0.0.1:<ephemeral>, serving from a daemon thread.

    `script` may be replaced at any time (e.g. after the agent is up). Without a script, turns
    are answered with `Text("ok")`: an idle agent that gets poked does not hang.
    """

    def __init__(self, script: Script[R] | None = None) -> None:
        self.script: Script[R] | None = script
        self.requests: list[R] = []
        self.errors: list[str] = []
        self._cond = threading.Condition()
        self._ids = 0
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        # A short poll interval: shutdown() waits up to one interval, at every teardown.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=type(self).__name__,
            daemon=True,
        )
        self._thread.start()

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ModelServer[R]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what tests read -------------------------------------------------------------------

    @property
    def turns(self) -> list[R]:
        with self._cond:
            return [r for r in self.requests if r.is_turn]

    def check(self) -> None:
        """Raise if a script failed while serving (its traceback is in the message)."""
        if self.errors:
            raise ScriptError("scripted model failed:\n" + "\n".join(self.errors))

    def wait_for_request(
        self,
        predicate: Callable[[R], bool] = lambda r: r.is_turn,
        *,
        timeout: float = DEFAULT_WAIT,
        after: int = 0,
        what: str = "a matching model request",
    ) -> R:
        """The first recorded request with index >= `after` that satisfies `predicate`.

        `after=len(server.requests)` taken before an action waits for a request caused by it.
        """

        def find() -> R | None:
            self.check()
            with self._cond:
                for request in self.requests[after:]:
                    if predicate(request):
                        return request
            return None

        return wait_until(find, timeout=timeout, what=what, describe=self.describe)

    def describe(self) -> str:
        with self._cond:
            lines = [f"{len(self.requests)} request(s) to {type(self).__name__}:"]
            for r in self.requests:
                last = r.last_user_text() if r.is_turn else None
                summary = f" last user text={last[:80]!r}" if last else ""
                lines.append(f"  #{r.index} {r.method} {r.path} kind={r.kind}{summary}")
        return "\n".join(lines)

    def next_id(self, prefix: str) -> str:
        with self._cond:
            self._ids += 1
            return f"{prefix}{self._ids:04d}"

    # -- serving ---------------------------------------------------------------------------

    def handle(self, http: BaseHTTPRequestHandler) -> None:
        length = int(http.headers.get("Content-Length") or 0)
        raw = http.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = {"_unparsed": raw.decode("utf-8", "replace")}
        with self._cond:
            headers = {k.lower(): v for k, v in http.headers.items()}
            request = self.request_type(
                index=len(self.requests),
                method=http.command,
                path=http.path,
                headers=headers,
                body=body,
                kind=self.classify(http.command, http.path, headers, body),
            )
            self.requests.append(request)
        try:
            self.respond(request, http)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up on this request (e.g. it was cancelled): nothing to answer.
            pass
        finally:
            with self._cond:
                self._cond.notify_all()

    def run_script(self, request: R) -> list[Block]:
        """The script's reply for a turn; a failing script is recorded and answered as an
        HTTP error by the caller so the client stops instead of hanging."""
        if self.script is None:
            return [Text("ok")]
        try:
            blocks = blocks_of(self.script(request))
        except Exception as error:  # the scenario's own bug: surface it in the test
            self.errors.append(f"request #{request.index}: {traceback.format_exc()}")
            raise ScriptError(str(error)) from error
        if not blocks:
            self.errors.append(f"request #{request.index}: script returned an empty reply")
            raise ScriptError("empty reply")
        return blocks

    # This wire format's ModelRequest subclass: each raw request is wrapped in it.
    request_type: type[R]

    @abstractmethod
    def classify(self, method: str, path: str, headers: dict[str, str], body: Any) -> str:
        """The request's kind: "turn" (the script answers it) or a side request's name."""

    @abstractmethod
    def respond(self, request: R, http: BaseHTTPRequestHandler) -> None:
        """Answer one request (turns through the script, side requests by rule)."""


# -- HTTP writing helpers shared by the wire formats ------------------------------------------


def send_json(http: BaseHTTPRequestHandler, payload: Any, status: int = 200) -> None:
    data = json.dumps(payload).encode()
    http.send_response(status)
    http.send_header("Content-Type", "application/json")
    http.send_header("Content-Length", str(len(data)))
    http.end_headers()
    if http.command != "HEAD":
        http.wfile.write(data)


class SseWriter:
    """Server-sent events over a chunked HTTP/1.1 response."""

    def __init__(self, http: BaseHTTPRequestHandler) -> None:
        self._http = http
        http.send_response(200)
        http.send_header("Content-Type", "text/event-stream")
        http.send_header("Cache-Control", "no-cache")
        http.send_header("Transfer-Encoding", "chunked")
        http.end_headers()

    def event(self, name: str, data: Mapping[str, Any]) -> None:
        chunk = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
        self._http.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))

    def close(self) -> None:
        self._http.wfile.write(b"0\r\n\r\n")
        self._http.wfile.flush()


# -- small scripts most scenarios start from ---------------------------------------------------


def always(text: str) -> Script[Any]:
    """Answer every turn with `text`."""
    return lambda request: Text(text)


def call_then_text(call: ToolCall, text: str = "done: {output}") -> Script[Any]:
    """Make `call` when a user message starts the turn; once its result is back, answer
    `text` with `{output}` replaced by the result. Deciding by the request (not by a step
    counter) keeps the script right when the client retries or interleaves requests."""

    def script(request: ModelRequest) -> Reply:
        if request.ends_with_tool_result():
            result = request.tool_results()[-1]
            return Text(text.replace("{output}", result.output))
        return call

    return script
