"""One way for an ASGI middleware to refuse a request while its body streams in."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send


async def refuse_while_reading(
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    errors: type[Exception],
    refuse: Callable[[Exception], Awaitable[None]],
) -> None:
    """Run ``app``; when ``receive`` raises one of ``errors`` before the response started,
    send ``refuse(error)`` instead (after it started, the error propagates: the connection
    is cut rather than a second response begun)."""
    started = False

    async def tracking_send(message: Message) -> None:
        nonlocal started
        if message["type"] == "http.response.start":
            started = True
        await send(message)

    try:
        await app(scope, receive, tracking_send)
    except errors as exc:
        if started:
            raise
        await refuse(exc)
