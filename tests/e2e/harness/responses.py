"""Scripted model speaking the OpenAI Responses wire format (what Codex CLI calls)."""

from __future__ import annotations

import json
import time
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
    flatten_text,
    send_json,
)


class ResponsesRequest(ModelRequest):
    """A request to /v1/responses: `instructions`, `input` items, `tools`."""

    @property
    def items(self) -> list[dict[str, Any]]:
        body = self.body if isinstance(self.body, dict) else {}
        items = body.get("input")
        return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []

    def _messages(self, *roles: str) -> list[str]:
        return [
            flatten_text(i.get("content"))
            for i in self.items
            if i.get("type", "message") == "message" and i.get("role") in roles
        ]

    def system_texts(self) -> list[str]:
        body = self.body if isinstance(self.body, dict) else {}
        texts = [str(body["instructions"])] if body.get("instructions") else []
        return texts + self._messages("system", "developer")

    def user_texts(self) -> list[str]:
        # Codex opens every thread with user-role context blocks (<environment_context>,
        # AGENTS.md instructions); they are the client's, not what the user typed.
        return [t for t in self._messages("user") if not t.lstrip().startswith("<")]

    def context_texts(self) -> list[str]:
        body = self.body if isinstance(self.body, dict) else {}
        texts = [str(body["instructions"])] if body.get("instructions") else []
        for item in self.items:
            if "content" in item:
                texts.append(flatten_text(item.get("content")))
            elif "output" in item:
                texts.append(flatten_text(item.get("output")))
            elif "arguments" in item:
                texts.append(str(item.get("arguments")))
        return texts

    def tool_names(self) -> list[str]:
        body = self.body if isinstance(self.body, dict) else {}
        names: list[str] = []
        for tool in body.get("tools") or []:
            if not isinstance(tool, dict):
                continue
            inner = tool.get("tools")
            if isinstance(inner, list):  # a namespace tool: MCP server `mcp__<server>`
                names += [
                    f"{tool.get('name')}__{t.get('name')}" for t in inner if isinstance(t, dict)
                ]
            else:
                names.append(str(tool.get("name") or tool.get("type")))
        return names

    def tool_calls(self) -> list[SeenToolCall]:
        calls: list[SeenToolCall] = []
        for item in self.items:
            if item.get("type") not in ("function_call", "custom_tool_call", "local_shell_call"):
                continue
            raw = item.get("arguments", item.get("input"))
            try:
                arguments = json.loads(raw) if isinstance(raw, str) else raw
            except ValueError:
                arguments = raw
            calls.append(
                SeenToolCall(
                    call_id=str(item.get("call_id")),
                    name=str(item.get("name")),
                    arguments=arguments,
                    namespace=item.get("namespace"),
                )
            )
        return calls

    def tool_results(self) -> list[SeenToolResult]:
        return [
            SeenToolResult(call_id=str(i.get("call_id")), output=flatten_text(i.get("output")))
            for i in self.items
            if i.get("type") in ("function_call_output", "custom_tool_call_output")
        ]

    def ends_with_tool_result(self) -> bool:
        for item in reversed(self.items):
            if item.get("role") in ("system", "developer"):
                continue
            return item.get("type") in ("function_call_output", "custom_tool_call_output")
        return False


def _kind(method: str, path: str, headers: dict[str, str]) -> str:
    route = path.split("?", 1)[0]
    if method != "POST" or not route.endswith("/responses"):
        return "probe"
    # Codex describes every request in x-codex-turn-metadata; thread_source "thread_title"
    # marks the TUI's title generation, request_kind anything but "turn" other helpers.
    try:
        metadata = json.loads(headers.get("x-codex-turn-metadata") or "{}")
    except ValueError:
        metadata = {}
    if not isinstance(metadata, dict):
        return "turn"
    if metadata.get("thread_source") == "thread_title":
        return "title"
    kind = metadata.get("request_kind") or "turn"
    return str(kind)


class ResponsesModel(ModelServer[ResponsesRequest]):
    """Answers Codex: POST /v1/responses, always streamed as SSE."""

    request_type = ResponsesRequest

    def classify(self, method: str, path: str, headers: dict[str, str], body: Any) -> str:
        return _kind(method, path, headers)

    def respond(self, request: ResponsesRequest, http: BaseHTTPRequestHandler) -> None:
        if request.kind == "probe":
            route = request.path.split("?", 1)[0]
            # Codex refreshes the model list of a provider; an empty list keeps its defaults.
            send_json(
                http,
                {"object": "list", "data": [], "models": []} if route.endswith("/models") else {},
            )
            return
        if request.kind == "title":
            # The TUI names each new thread in a separate, tool-less thread whose answer
            # must match a {"title": ...} JSON schema.
            self._stream(http, "gpt-scripted", [Text('{"title": "Scripted session"}')])
            return
        try:
            blocks = self.run_script(request)
        except ScriptError as error:
            # 400 (not 5xx): Codex retries server errors with backoff; a scenario bug must
            # end the turn at once.
            send_json(
                http,
                {"error": {"type": "invalid_request_error", "message": f"scripted model: {error}"}},
                400,
            )
            return
        request.reply = blocks
        body = request.body if isinstance(request.body, dict) else {}
        self._stream(http, str(body.get("model") or "gpt-scripted"), blocks)

    def _render(self, block: Block) -> dict[str, Any]:
        if isinstance(block, Text):
            return {
                "type": "message",
                "id": self.next_id("msg_"),
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": block.text, "annotations": []}],
            }
        if block.freeform_input is not None:
            return {
                "type": "custom_tool_call",
                "id": self.next_id("ctc_"),
                "call_id": self.next_id("call_scripted_"),
                "name": block.name,
                "input": block.freeform_input,
                "status": "completed",
            }
        item: dict[str, Any] = {
            "type": "function_call",
            "id": self.next_id("fc_"),
            "call_id": self.next_id("call_scripted_"),
            "name": block.name,
            "arguments": json.dumps(dict(block.arguments)),
            "status": "completed",
        }
        if block.mcp_server:
            item["namespace"] = f"mcp__{block.mcp_server}"
        return item

    def _stream(self, http: BaseHTTPRequestHandler, model: str, blocks: list[Block]) -> None:
        response: dict[str, Any] = {
            "id": self.next_id("resp_"),
            "object": "response",
            "created_at": int(time.time()),
            "status": "in_progress",
            "model": model,
            "output": [],
        }
        sse = SseWriter(http)
        sse.event("response.created", {"type": "response.created", "response": response})
        output = [self._render(block) for block in blocks]
        for index, item in enumerate(output):
            if item["type"] == "message":
                _stream_message(sse, index, item)
            else:
                _stream_call(sse, index, item)
        usage = {
            "input_tokens": 10,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 5,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 15,
        }
        done = {**response, "status": "completed", "output": output, "usage": usage}
        sse.event("response.completed", {"type": "response.completed", "response": done})
        sse.close()


def _stream_message(sse: SseWriter, index: int, item: dict[str, Any]) -> None:
    part = item["content"][0]
    text = part["text"]
    ids = {"item_id": item["id"], "output_index": index, "content_index": 0}
    opening = {**item, "status": "in_progress", "content": []}
    sse.event(
        "response.output_item.added",
        {"type": "response.output_item.added", "output_index": index, "item": opening},
    )
    sse.event(
        "response.content_part.added",
        {"type": "response.content_part.added", **ids, "part": {**part, "text": ""}},
    )
    sse.event(
        "response.output_text.delta", {"type": "response.output_text.delta", **ids, "delta": text}
    )
    sse.event(
        "response.output_text.done", {"type": "response.output_text.done", **ids, "text": text}
    )
    sse.event(
        "response.content_part.done", {"type": "response.content_part.done", **ids, "part": part}
    )
    sse.event(
        "response.output_item.done",
        {"type": "response.output_item.done", "output_index": index, "item": item},
    )


def _stream_call(sse: SseWriter, index: int, item: dict[str, Any]) -> None:
    ids = {"item_id": item["id"], "output_index": index}
    if item["type"] == "custom_tool_call":
        for kind, payload in (
            ("response.output_item.added", {"item": {**item, "input": ""}}),
            ("response.custom_tool_call_input.delta", {**ids, "delta": item["input"]}),
            ("response.custom_tool_call_input.done", {**ids, "input": item["input"]}),
            ("response.output_item.done", {"item": item}),
        ):
            sse.event(kind, {"type": kind, "output_index": index, **payload})
        return
    opening = {**item, "status": "in_progress", "arguments": ""}
    sse.event(
        "response.output_item.added",
        {"type": "response.output_item.added", "output_index": index, "item": opening},
    )
    sse.event(
        "response.function_call_arguments.delta",
        {"type": "response.function_call_arguments.delta", **ids, "delta": item["arguments"]},
    )
    sse.event(
        "response.function_call_arguments.done",
        {"type": "response.function_call_arguments.done", **ids, "arguments": item["arguments"]},
    )
    sse.event(
        "response.output_item.done",
        {"type": "response.output_item.done", "output_index": index, "item": item},
    )
