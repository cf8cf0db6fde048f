"""A streaming response that drops a client who stops reading and always runs its cleanup."""

import logging
from collections.abc import AsyncIterable, Callable, Mapping

import anyio
from fastapi.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send

log = logging.getLogger("zariz.http")


class BoundedStreamingResponse(StreamingResponse):
    def __init__(
        self,
        content: AsyncIterable[bytes],
        *,
        send_timeout: float,
        on_close: Callable[[], None],
        media_type: str,
        headers: Mapping[str, str] | None = None,
    ):
        super().__init__(content, media_type=media_type, headers=headers)
        self.send_timeout = send_timeout
        self.on_close = on_close

    async def stream_response(self, send: Send) -> None:
        async def timed_send(message: Message) -> None:
            # uvicorn's send waits while the socket's buffers are full: a client that stops
            # reading would otherwise keep this response (and what it counts against) for ever.
            with anyio.fail_after(self.send_timeout):
                await send(message)

        await super().stream_response(timed_send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except TimeoutError:
            # Returning without finishing the body makes uvicorn close the connection.
            log.warning("client stopped reading a streamed response; connection dropped")
        finally:
            # Starlette leaves the body iterator open on a disconnect; close it now, not at
            # garbage collection, and give back what the response counted against.
            body = self.body_iterator
            if hasattr(body, "aclose"):
                with anyio.CancelScope(shield=True):
                    await body.aclose()
            self.on_close()
