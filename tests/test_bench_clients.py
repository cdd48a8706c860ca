"""The benchmark's Socket.IO viewer: events handled on its read thread, no thread each."""

from __future__ import annotations

import threading

from telekol.server.ops.bench.clients import LiveClient, _InlineEvents


def test_an_event_is_handled_on_the_read_thread_and_other_packets_as_before() -> None:
    eio = _InlineEvents()
    handled: list[threading.Thread] = []
    eio.on("message", lambda _data: handled.append(threading.current_thread()))
    eio._trigger_event("message", '2/live,["observation",{"msg_id":"m"}]', run_async=True)
    assert handled == [threading.current_thread()]
    started = eio._trigger_event("message", '0/live,{"sid":"s"}', run_async=True)  # CONNECT
    started.join(5)
    assert len(handled) == 2 and handled[1] is not threading.current_thread()


def test_the_viewer_client_uses_the_inline_engine_io_client() -> None:
    assert isinstance(LiveClient(reconnection=False).eio, _InlineEvents)
