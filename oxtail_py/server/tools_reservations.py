"""Tools for file reservations: reserve_files, release_files, list_reservations."""

from __future__ import annotations

from datetime import UTC, datetime

from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel, Field

from oxtail_py import reserving
from oxtail_py.framing import neutralize
from oxtail_py.reservations import Conflict, Reservation
from oxtail_py.server.plumbing import ToolContext


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ReservationOut(BaseModel):
    path: str = Field(description="the path or glob as its holder wrote it")
    pattern: str = Field(description="anchored gitwildmatch pattern, relative to the project")
    kind: str = Field(description="'file', 'dir' (everything under it) or 'glob'")
    exclusive: bool
    holder: str = Field(description="the holder's tmux session name, else its session id")
    holder_session_id: str
    is_mine: bool
    reason: str
    expires_at: str

    @classmethod
    def of(cls, r: Reservation, tools: ToolContext) -> ReservationOut:
        return cls(path=neutralize(r.given), pattern=neutralize(r.pattern), kind=r.kind,
                   exclusive=r.exclusive, holder=neutralize(r.holder.label),
                   holder_session_id=r.holder.session_id,
                   is_mine=r.holder.server == tools.agent.me, reason=neutralize(r.reason),
                   expires_at=iso(r.expires_at))


class ConflictOut(BaseModel):
    requested: str
    holder: str
    holder_session_id: str
    pattern: str = Field(description="the holder's reserved path or glob")
    exclusive: bool
    expires_at: str
    reason: str
    example_path: str = Field(description="a path both match")
    ask: str = Field(description="how to ask the holder for a release")

    @classmethod
    def of(cls, c: Conflict) -> ConflictOut:
        r = c.theirs
        return cls(requested=c.requested, holder=neutralize(r.holder.label),
                   holder_session_id=r.holder.session_id, pattern=neutralize(r.given),
                   exclusive=r.exclusive, expires_at=iso(r.expires_at),
                   reason=neutralize(r.reason), example_path=neutralize(c.example),
                   ask=f'ask_peer(target="{r.holder.session_id}", body="May I have '
                       f'{neutralize(r.given)}? Please release_files it when you can.")')


class Reserved(BaseModel):
    granted: list[ReservationOut]
    conflicts: list[ConflictOut] = Field(
        description="paths not granted: another live agent holds an overlapping reservation"
    )


class Released(BaseModel):
    released: list[ReservationOut]
    not_held: list[str] = Field(description="named paths you held no reservation on")


class ReservationList(BaseModel):
    project_root: str
    reservations: list[ReservationOut]


def register(mcp: MCPServer, tools: ToolContext) -> None:
    expiry = reserving.ExpiryTimer(tools.agent)

    @mcp.tool()
    def reserve_files(
        ctx: Context,
        paths: list[str],
        exclusive: bool = True,
        ttl_s: int = 1800,
        reason: str = "",
    ) -> Reserved:
        """Reserve files, directories or gitwildmatch globs (relative to the project root)
        before editing them. Exclusive: other agents' Edit/Write/apply_patch on them is
        denied by their hooks; shared (exclusive=false): they are only warned. Returns
        what was granted and the conflicts (holder, session, pattern, expiry, reason).
        Reserving again renews. Reservations end at ttl_s or when you exit."""

        def work() -> Reserved:
            got = reserving.reserve_files(tools.agent, paths, exclusive=exclusive,
                                          ttl_s=ttl_s, reason=reason, expiry=expiry)
            return Reserved(granted=[ReservationOut.of(r, tools) for r in got.granted],
                            conflicts=[ConflictOut.of(c) for c in got.conflicts])

        return tools.call(ctx, work)

    @mcp.tool()
    def release_files(ctx: Context, paths: list[str] | None = None) -> Released:
        """Release your reservations: those named in paths, or all of yours when paths is
        omitted. Another agent's reservation cannot be released (ask_peer its holder)."""

        def work() -> Released:
            got = reserving.release_files(tools.agent, paths)
            return Released(released=[ReservationOut.of(r, tools) for r in got.released],
                            not_held=got.not_held)

        return tools.call(ctx, work)

    @mcp.tool()
    def list_reservations(ctx: Context) -> ReservationList:
        """Every live reservation in this project: path, holder, exclusive, expiry, reason."""

        def work() -> ReservationList:
            found = reserving.list_reservations(tools.agent)
            return ReservationList(project_root=str(tools.agent.project_root),
                                   reservations=[ReservationOut.of(r, tools) for r in found])

        return tools.call(ctx, work)
