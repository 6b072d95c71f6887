"""How late a change reaches another process's facts cache: NOTIFY delivery after commit.

    python scripts/bench/notify_delay.py [--messages 2000] [--busy 0,2,4]

The validation facts cache (api/facts_cache.py) hears of changes made by *other*
processes through `licentric_facts` notifications, which PostgreSQL delivers
asynchronously. This measures the window that leaves: a writer commits a NOTIFY (what
migration 0012's triggers send) in autocommit and notes when its COMMIT returned; a
listener in another process, blocked in poll() on its socket exactly as
`ledger.store.listen.ChannelListener` is, notes when the message is readable. The
delay is readable - commit returned (negative: it arrived before the writer even had its
answer). With `--busy N`, N processes spin on the CPU meanwhile, as a loaded 2-core
server's would. Prints p50 / p99 / p99.9 / max per load level.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import select
import statistics
import sys
import time
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import psycopg

from scripts.bench._db import drop_database
from scripts.bench._db import fresh_database

CHANNEL = "licentric_facts"


def listen(url: str, count: int, ready: Event, out: Connection) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"LISTEN {CHANNEL}")
        pgconn = conn.pgconn
        poller = select.poll()
        poller.register(pgconn.socket, select.POLLIN)
        ready.set()
        arrivals: dict[int, float] = {}
        while len(arrivals) < count:
            if not poller.poll(5000):
                break
            seen = time.perf_counter()
            pgconn.consume_input()
            while (note := pgconn.notifies()) is not None:
                arrivals[int(note.extra.decode().rpartition("|")[2])] = seen
        out.send(arrivals)


def spin(stop: Event) -> None:
    while not stop.is_set():
        sum(range(10_000))


def measure(url: str, count: int, busy: int) -> list[float]:
    ready, stop = mp.Event(), mp.Event()
    receiver, sender = mp.Pipe(duplex=False)
    listener = mp.Process(target=listen, args=(url, count, ready, sender))
    listener.start()
    ready.wait(10)
    spinners = [mp.Process(target=spin, args=(stop,)) for _ in range(busy)]
    for one in spinners:
        one.start()
    committed: dict[int, float] = {}
    with psycopg.connect(url, autocommit=True) as writer:
        for n in range(count):
            writer.execute("SELECT pg_notify(%s, %s)", (CHANNEL, f"P|bench|{n}"))
            committed[n] = time.perf_counter()
            time.sleep(0.001)  # messages one by one, not a queue the listener drains
    arrivals = receiver.recv()
    listener.join(10)
    stop.set()
    for one in spinners:
        one.join(10)
    return [(arrivals[n] - committed[n]) * 1000 for n in committed if n in arrivals]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--busy", default="0,2,4", help="CPU-spinning processes, per run")
    args = parser.parse_args()
    url = fresh_database("licentric_bench_notify", migrated=False)
    try:
        print(f"{os.cpu_count()} CPUs; delay = listener's socket readable - writer's COMMIT back")
        for busy in (int(b) for b in args.busy.split(",")):
            delays = sorted(measure(url, args.messages, busy))
            q = statistics.quantiles(delays, n=1000)
            print(
                f"busy={busy}: {len(delays)} messages, p50 {q[499]:.3f} ms, p99 {q[989]:.3f} ms,"
                f" p99.9 {q[998]:.3f} ms, max {delays[-1]:.3f} ms,"
                f" after the COMMIT came back: {sum(d > 0 for d in delays)}"
            )
    finally:
        drop_database(url)


if __name__ == "__main__":
    main()
