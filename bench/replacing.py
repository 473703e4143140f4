"""How the Graph loader replaces stored copies in a large warehouse: a daily run's changes.

A daily load of many mailboxes brings back thousands of messages already landed (read flags,
categories, moves: Graph's delta returns a changed message whole) and removals. Each replaces
its stored copy: a delete scattered over the year's copies. DuckDB holds memory for the part
of the table around each deleted row until the next checkpoint, so the loader bounds the
copies replaced between checkpoints (loaders/graph/message_merge.py, REPLACED_PER_CHECKPOINT).

    python -m bench.replacing --warehouse WAREHOUSE --copies 20000

WAREHOUSE: a warehouse holding a year of raw mail, e.g. a 2,500-mailbox year landed by
`python -m bench.transform --mailboxes 2500 --keep` (75 M copies, ~9 GB); it is copied into
`--workdir` first and never changed. `--copies` stored copies, picked at random, are sent
again as pages of up to 1,000 records per mailbox, and landed by the loader's writer at the
loader's memory limit: once as it lands them, once with the bound lifted (no checkpoint before
the load ends, as until 2026-12-05). Each run prints its wall time and the copies replaced,
or DuckDB's error.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import orjson

from loaders.graph import message_merge
from loaders.graph.landing import Lander, PageItem
from loaders.schema import GRAPH_SCHEMA, MESSAGE_FIELDS
from loaders.warehouse import connect

DELTA = "https://graph.microsoft.com/v1.0/users/{mailbox}/messages/delta?$deltatoken=bench"


def replace(path: Path, copies: int, bounded: bool) -> None:
    """In this process: send `copies` stored copies again through the loader's writer."""
    columns = ", ".join(f'"{name}"' for name in MESSAGE_FIELDS)
    with duckdb.connect(str(path), read_only=True) as picking:  # its memory is not the loader's
        rows = picking.execute(
            f"""select _mailbox_id, _folder_id, to_json(struct_pack({columns}))
            from {GRAPH_SCHEMA}.messages using sample {int(copies)} rows
            order by _mailbox_id, _folder_id"""
        ).fetchall()
    con = connect(path)  # the loader's own settings (memory_limit)
    pages: dict[tuple[str, str], list[list[bytes]]] = {}
    for mailbox, folder, record in rows:
        chunks = pages.setdefault((mailbox, folder), [[]])
        if len(chunks[-1]) == 1000:
            chunks.append([])
        chunks[-1].append(record.encode())
    if not bounded:
        message_merge.REPLACED_PER_CHECKPOINT = 10**12
    label = (f"a checkpoint every {message_merge.REPLACED_PER_CHECKPOINT:,} replaced" if bounded
             else "no checkpoint before the load ends (until 2026-12-05)")
    lander = Lander(con, "bench-replacing")
    lander.start()
    started = time.perf_counter()
    try:
        for (mailbox, folder), chunks in pages.items():
            delta = DELTA.format(mailbox=mailbox)
            for chunk in chunks:
                raw = b'{"value":[' + b",".join(chunk) + b'],"@odata.deltaLink":' + \
                    orjson.dumps(delta) + b"}"
                lander.put(PageItem(
                    "messages", mailbox, f"messages:{folder}", raw, folder,
                    {"window_start": None, "next_link": None, "delta_link": delta},
                ))
        lander.close()
    except Exception as exc:  # noqa: BLE001 - the figure is the failure itself
        exc = lander.error or exc  # the writer's own error, not the producer's "stopped"
        print(f"  {label}: failed after "
              f"{time.perf_counter() - started:.1f} s: {str(exc).splitlines()[0]}")
        return
    seconds = time.perf_counter() - started
    landed = con.execute(
        f"select count(*) from {GRAPH_SCHEMA}.messages where _run_id = 'bench-replacing'"
    ).fetchone()[0]
    limit = con.execute("select current_setting('memory_limit')").fetchone()[0]
    print(f"  {label}: {landed:,} copies replaced in "
          f"{seconds:.1f} s at memory_limit {limit}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--copies", type=int, default=20_000)
    parser.add_argument("--workdir", type=Path, default=Path(".bench/replacing"))
    parser.add_argument("--run", choices=["bounded", "unbounded"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run:  # a child: one run, in a fresh process (its own memory)
        replace(args.warehouse, args.copies, args.run == "bounded")
        return 0
    if not args.warehouse.is_file():
        print(f"there is no warehouse at {args.warehouse}", file=sys.stderr)
        return 2
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"replacing {args.copies:,} stored copies of {args.warehouse}:")
    for run in ("bounded", "unbounded"):
        copy = args.workdir / "warehouse.duckdb"
        Path(f"{copy}.wal").unlink(missing_ok=True)  # a killed run's log is not the copy's
        shutil.copyfile(args.warehouse, copy)
        subprocess.run([sys.executable, "-m", "bench.replacing", "--warehouse", str(copy),
                        "--copies", str(args.copies), "--run", run],
                       env={**os.environ}, check=False)
        copy.unlink()
        Path(f"{copy}.wal").unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
