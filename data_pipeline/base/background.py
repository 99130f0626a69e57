"""Iterate in a background thread: decoding (FFmpeg) releases the GIL, so a producer
thread overlaps it with the consumer on a second core (dlib's shape predictor holds
the GIL: two threads fitting landmarks run no faster than one)."""

import queue
import threading
from typing import Iterable, Iterator


def in_background(items: Iterable, depth: int, name: str = "affnet-background") -> Iterator:
    """`items`, produced in a daemon thread up to `depth` ahead.

    The producer's exceptions re-raise in the consumer, in order; a consumer
    that stops early (closes the generator) stops the producer and unblocks it.
    """
    done = object()
    handoff: "queue.Queue" = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce():
        try:
            for item in items:
                if stop.is_set():
                    return
                handoff.put(item)
            handoff.put(done)
        except BaseException as error:  # Re-raised in the consumer.
            handoff.put(error)

    thread = threading.Thread(target=produce, daemon=True, name=name)
    thread.start()
    try:
        while True:
            item = handoff.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # Unblock a producer waiting on a full queue.
            try:
                handoff.get_nowait()
            except queue.Empty:
                thread.join(0.01)
