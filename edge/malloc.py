"""Fewer glibc malloc arenas for the node's process: the same work in less resident memory.

glibc gives each thread that allocates an arena of its own (up to eight per core), and every
arena keeps what was freed in it. A camera node runs a dozen threads (the camera loop with its
decoder, onnxruntime's worker, the recorder, the uplink, the metrics server, ...), and the arenas
add about 9 MB to its resident set for no speed: the threads that allocate much hold the GIL
anyway (``bench/camera.py``: ``node_rss_mb`` 158 -> 149 MB, and it stops creeping up).

``ioc-edge run`` calls :func:`limit_arenas` before the node starts. Example::

    limit_arenas(2)
    node = Node(load_config("edge.toml"))
    node.start()
"""

from __future__ import annotations

import ctypes
import os

__all__ = ["limit_arenas"]

M_ARENA_MAX = -8
"""``mallopt`` parameter number of the arena cap, from glibc's ``malloc.h``."""


def limit_arenas(count: int = 2) -> bool:
    """Cap glibc's malloc arenas at ``count`` for the threads that allocate from now on.

    Call it before the threads start. ``MALLOC_ARENA_MAX`` in the environment wins (glibc reads
    it at start: the operator's choice stays), and a C library other than glibc is left alone.
    Returns whether the cap was set. Raises ``ValueError`` for a ``count`` below 1.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, not {count}")
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter itself runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(M_ARENA_MAX, count) == 1
