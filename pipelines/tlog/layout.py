"""Every file name and path of a log directory, in one place: the writer (``pipelines.log.writer``,
``tlog.tiles``), the exporter (``pipelines.log.export``) and the readers (``pipelines.log.verify``,
``pipelines.log.prove``, ``pipelines.log.prove_static``) all build their paths from here.

A log directory (and the ``log/`` folder of a published site) holds::

    checkpoint                  latest signed checkpoint (c2sp.org/tlog-checkpoint)
    checkpoints/<size>          every checkpoint ever signed, by tree size
    tile/<L>/<N>[.p/<W>]        Merkle tree hashes (c2sp.org/tlog-tiles, height 8)
    tile/entries/<N>[.p/<W>]    entry bundles (c2sp.org/tlog-tiles; written by the export only)
    state.json                  committed tree size and root (the tile store's commit point; not published)
    batches.jsonl               one {"batch_id", "start", "count"} line per appended batch, append-only
    log.vkey                    the log's public key (signed-note verifier key; its name is the origin)

``tile/…`` and ``checkpoint`` are the specs' names; the others are sensorlog's.
"""

from __future__ import annotations

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT

CHECKPOINT = "checkpoint"
CHECKPOINTS = "checkpoints"
VKEY = "log.vkey"
BATCHES = "batches.jsonl"
STATE_FILE = "state.json"


def checkpoint_path(size: int) -> str:
    """Relative path of the checkpoint signed for tree size ``size``: ``checkpoints/<size>``."""
    return f"{CHECKPOINTS}/{size}"


def tile_index_path(index: int) -> str:
    """The tlog-tiles ``<N>`` path: 3-digit groups, all but the last prefixed with ``x``."""
    if index < 0:
        raise ValueError("tile index must be >= 0")
    groups = []
    while True:
        index, rest = divmod(index, 1000)
        groups.append(rest)
        if not index:
            break
    groups.reverse()
    return "/".join([*(f"x{g:03d}" for g in groups[:-1]), f"{groups[-1]:03d}"])


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """Relative path of a tile: ``tile/<L>/<N>`` or, for a partial tile, ``tile/<L>/<N>.p/<W>``."""
    if not 0 <= level <= 63:
        raise ValueError("tile level must be in [0, 63]")
    if not 1 <= width <= TILE_WIDTH:
        raise ValueError("tile width must be in [1, 256]")
    path = f"tile/{level}/{tile_index_path(index)}"
    return path if width == TILE_WIDTH else f"{path}.p/{width}"


def bundle_path(index: int, width: int = TILE_WIDTH) -> str:
    """``tile/entries/<N>`` or, for a partial bundle, ``tile/entries/<N>.p/<W>``."""
    if not 1 <= width <= TILE_WIDTH:
        raise ValueError("bundle width must be in [1, 256]")
    path = f"tile/entries/{tile_index_path(index)}"
    return path if width == TILE_WIDTH else f"{path}.p/{width}"
