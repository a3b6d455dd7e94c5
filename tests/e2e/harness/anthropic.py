"""Scripted model speaking the Anthropic Messages wire format (what Claude Code calls)."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any

from .model import (
    Block,
    ModelRequest,
    ModelServer,
    ScriptError,
    SeenToolCall,
    SeenToolResult,
    SseWriter,
    Text,
    ToolCall,
    flatten_text,
    send_json,
)


class AnthropicRequest(ModelRequest):
    """A request to /v1/messages: `system`, `messages` (role user/assistant/system), `tools`."""

    @property
    def messages(self) -> list[dict[str, Any]]:
        body = self.body if isinstance(self.body, dict) else {}
        messages = body.get("messages")
        return messages if isinstance(messages, list) else []

    def system_texts(self) -> list[str]:
        body = self.body if isinstance(self.body, dict) else {}
        texts = [flatten_text(body["system"])] if body.get("system") else []
        # Hook additionalContext arrives as a mid-conversation system-role message.
        texts += [
            flatten_text(m.get("content")) for m in self.messages if m.get("role") == "system"
        ]
        return texts

    def user_texts(self) -> list[str]:
        # One entry per text block: Claude Code puts its own context (git status, dates,
        # hook context) into the user message as `<system-reminder>` blocks; those are
        # skipped here (they stay visible to `contains` and `context_texts`).
        texts: list[str] = []
        for message in self.messages:
            if message.get("role") != "user":
                continue
            content = message.get("content")
            blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
            texts += [
                str(block.get("text", ""))
                for block in blocks or []
                if isinstance(block, dict)
                and block.get("type") == "text"
                and not str(block.get("text", "")).lstrip().startswith("<system-reminder>")
            ]
        return texts

    def context_texts(self) -> list[str]:
        body = self.body if isinstance(self.body, dict) else {}
        texts = [flatten_text(body["system"])] if body.get("system") else []
        texts += [flatten_text(m.get("content")) for m in self.messages]
        return texts

    def tool_names(self) -> list[str]:
        body = self.body if isinstance(self.body, dict) else {}
        return [str(t.get("name")) for t in body.get("tools") or [] if isinstance(t, dict)]

    def _blocks(self, role: str, kind: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for message in self.messages:
            content = message.get("content")
            if message.get("role") == role and isinstance(content, list):
                found += [b for b in content if isinstance(b, dict) and b.get("type") == kind]
        return found

    def tool_calls(self) -> list[SeenToolCall]:
        return [
            SeenToolCall(
                call_id=str(b.get("id")), name=str(b.get("name")), arguments=b.get("input")
            )
            for b in self._blocks("assistant", "tool_use")
        ]

    def tool_results(self) -> list[SeenToolResult]:
        return [
            SeenToolResult(
                call_id=str(b.get("tool_use_id")),
                output=flatten_text(b.get("content")),
                is_error=bool(b.get("is_error")),
            )
            for b in self._blocks("user", "tool_result")
        ]

    def ends_with_tool_result(self) -> bool:
        for message in reversed(self.messages):
            if message.get("role") == "system":
                continue  # hook context sits after the tool result
            content = message.get("content")
            if message.get("role") != "user" or not isinstance(content, list):
                return False
            return any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content)
        return False


class AnthropicModel(ModelServer[AnthropicRequest]):
    """Answers Claude Code: POST /v1/messages?beta=true (streaming SSE or plain JSON)."""

    request_type = AnthropicRequest

    def classify(self, method: str, path: str, headers: dict[str, str], body: Any) -> str:
        return _kind(method, path, body)

    def respond(self, request: AnthropicRequest, http: BaseHTTPRequestHandler) -> None:
        if request.kind == "count_tokens":
            send_json(http, {"input_tokens": _estimate_tokens(request.body)})
            return
        if request.kind == "probe":
            send_json(http, {})
            return
        if request.kind == "turn":
            try:
                blocks = self.run_script(request)
            except ScriptError as error:
                # 400 (not 5xx): the client must not retry a scenario bug for minutes.
                send_json(http, _error("invalid_request_error", f"scripted model: {error}"), 400)
                return
        else:
            blocks = [Text(_SIDE_ANSWERS.get(request.kind, "ok"))]
        request.reply = blocks
        body = request.body if isinstance(request.body, dict) else {}
        model = str(body.get("model") or "claude-scripted")
        content = [self._render(block) for block in blocks]
        stop = "tool_use" if any(isinstance(b, ToolCall) for b in blocks) else "end_turn"
        if body.get("stream"):
            _stream(http, self.next_id("msg_"), model, content, stop)
        else:
            send_json(http, _message(self.next_id("msg_"), model, content, stop))

    def _render(self, block: Block) -> dict[str, Any]:
        if isinstance(block, Text):
            return {"type": "text", "text": block.text}
        name = f"mcp__{block.mcp_server}__{block.name}" if block.mcp_server else block.name
        return {
            "type": "tool_use",
            "id": self.next_id("toolu_scripted_"),
            "name": name,
            "input": dict(block.arguments),
        }


# Side requests answered without the script. Found by running the client (tests/e2e/README.md):
# with CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 (the harness default) Claude Code sends
# none; without it, a `HEAD /api/hello` probe and, in the TUI, a title request per session.
_SIDE_ANSWERS: dict[str, str] = {
    "title": '{"title": "Scripted session"}',
    "side": "ok",
}


def _kind(method: str, path: str, body: Any) -> str:
    if method in ("GET", "HEAD"):
        return "probe"
    route = path.split("?", 1)[0]
    if route.endswith("/count_tokens"):
        return "count_tokens"
    if not route.endswith("/v1/messages") or not isinstance(body, dict):
        return "probe"
    # A conversation turn always offers the agent's tools; Claude Code's helper calls
    # (session title, summaries) offer none. The title call asks for {"title": ...} JSON.
    if body.get("tools"):
        return "turn"
    output_format = (body.get("output_config") or {}).get("format") or {}
    properties = (output_format.get("schema") or {}).get("properties") or {}
    return "title" if "title" in properties else "side"


def _estimate_tokens(body: Any) -> int:
    return max(1, len(json.dumps(body)) // 4)


def _usage() -> dict[str, int]:
    return {
        "input_tokens": 10,
        "output_tokens": 5,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def _message(msg_id: str, model: str, content: list[dict[str, Any]], stop: str) -> dict[str, Any]:
    return {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": _usage(),
    }


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


def _stream(
    http: BaseHTTPRequestHandler,
    msg_id: str,
    model: str,
    content: list[dict[str, Any]],
    stop: str,
) -> None:
    sse = SseWriter(http)
    start = _message(msg_id, model, [], stop)
    start["stop_reason"] = None
    sse.event("message_start", {"type": "message_start", "message": start})
    for index, block in enumerate(content):
        if block["type"] == "text":
            opening: dict[str, Any] = {"type": "text", "text": ""}
            delta: dict[str, Any] = {"type": "text_delta", "text": block["text"]}
        else:
            opening = {**block, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        sse.event(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": opening},
        )
        sse.event(
            "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        )
        sse.event("content_block_stop", {"type": "content_block_stop", "index": index})
    sse.event(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": {"output_tokens": 5},
        },
    )
    sse.event("message_stop", {"type": "message_stop"})
    sse.close()
