"""In-process fan-out of committed event ids to the SSE hub of this process."""

import threading
from collections.abc import Callable

Listener = Callable[[list[int]], None]

_lock = threading.Lock()
_listeners: list[Listener] = []


def subscribe(listener: Listener) -> None:
    with _lock:
        _listeners.append(listener)


def unsubscribe(listener: Listener) -> None:
    with _lock:
        if listener in _listeners:
            _listeners.remove(listener)


def publish(event_ids: list[int]) -> None:
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        listener(event_ids)
