"""Reads what an offline W&B run recorded (``WANDB_MODE=offline``): the records of its ``run-ID.wandb`` file.

The file is W&B's transaction log: a 7-byte header (``:W&B``, a magic number, a version), then 32 KiB blocks
of records, each a 7-byte header (checksum, little-endian length and a type: whole, first, middle or last
piece) and a piece of one serialised ``wandb_internal_pb2.Record``. Written here from the bytes W&B writes,
so that the tests read the run without a W&B server.
"""

import json
import struct
from pathlib import Path

from wandb.proto import wandb_internal_pb2

FILE_HEADER = 7
RECORD_HEADER = 7
BLOCK = 32 * 1024
WHOLE, LAST = 1, 4


def records(path: Path) -> list[wandb_internal_pb2.Record]:
    """Every record of an offline run's ``.wandb`` file, in order."""
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B transaction log"
    found, pending, position = [], b"", FILE_HEADER
    while position + RECORD_HEADER <= len(data):
        left_in_block = BLOCK - position % BLOCK
        if left_in_block < RECORD_HEADER:  # a block's tail too short for a header is padding
            position += left_in_block
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + RECORD_HEADER])
        pending += data[position + RECORD_HEADER : position + RECORD_HEADER + length]
        position += RECORD_HEADER + length
        if kind in (WHOLE, LAST):
            found.append(wandb_internal_pb2.Record.FromString(pending))
            pending = b""
    return found


def _items(items) -> dict:
    return {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in items}


def history(path: Path) -> list[dict]:
    """The logged rows, without W&B's own keys (``_step``, ``_runtime``, ``_timestamp``)."""
    rows = [_items(record.history.item) for record in records(path) if record.WhichOneof("record_type") == "history"]
    return [{key: value for key, value in row.items() if not key.startswith("_")} for row in rows]


def run_info(path: Path) -> tuple[str, str, dict]:
    """The run's id, project and config."""
    (run,) = [record.run for record in records(path) if record.WhichOneof("record_type") == "run"]
    return run.run_id, run.project, _items(run.config.update)


def summary(path: Path) -> dict:
    """The run's summary: every summary update, later ones winning."""
    values = {}
    for record in records(path):
        if record.WhichOneof("record_type") == "summary":
            values.update(_items(record.summary.update))
    return values
