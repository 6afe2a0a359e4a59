"""Benchmark `visualdm.spatial.rtree.RTree` against the `rtree` package and node rbush.

The workload copies rbush's bench/perf.js: N boxes of size up to 1 in a 100x100 world, node
capacity 16, 1,000 search boxes covering 0.01%, 1% and 10% of the area, plus 1,000 kNN queries
(k=1, k=10), 100,000 one-by-one inserts into a fresh tree and 10,000 removes from a loaded one.
One seeded data set is written to a temporary directory and every engine runs in its own
subprocess, so the peak RSS reported is that engine's alone. Each timed step is repeated and
the median reported; the last line printed is one JSON object with all figures.

    .venv/bin/python bench/spatial.py [--n 1000000] [--repeats 3] [--engines ours,rtree,rbush_node]
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
NODE_CAPACITY = 16
SEARCHES = {
    "search_0.01pct": ("q001", 1.0),
    "search_1pct": ("q1", 10.0),
    "search_10pct": ("q10", 100 * math.sqrt(0.1)),
}
ROWS = ["bulk_load", *SEARCHES, "knn_k1", "knn_k10", "insert_100k", "remove_10k", "peak_rss_mb"]


def rand_boxes(rng: np.random.Generator, n: int, size: float) -> np.ndarray:
    """perf.js randBox: corner uniform in [0, 100 - size), each side up to `size`."""
    u = rng.random((n, 4))
    x = u[:, 0] * (100 - size)
    y = u[:, 1] * (100 - size)
    return np.column_stack([x, y, x + size * u[:, 2], y + size * u[:, 3]])


def write_data(directory: Path, n: int, seed: int) -> None:
    """Generate the data set once and store it as .npy (Python) and raw float64 (node)."""
    rng = np.random.default_rng(seed)
    arrays = {
        "data": rand_boxes(rng, n, 1.0),
        "inserts": rand_boxes(rng, 100_000, 1.0),
        **{name: rand_boxes(rng, 1000, size) for name, size in SEARCHES.values()},
        "points": rng.random((1000, 2)) * 100,
    }
    for name, arr in arrays.items():
        np.save(directory / f"{name}.npy", arr)
        arr.astype("<f8").tofile(directory / f"{name}.f64")


def timed(
    repeats: int, body: Callable[[Any], Any], setup: Callable[[], Any] = lambda: None
) -> tuple[float, Any]:
    """Run body(setup()) `repeats` times; return the median seconds and the last result."""
    times = []
    out = None
    for _ in range(repeats):
        out = None  # so that two results (e.g. two 1M-item trees) are never alive at once
        state = setup()
        t0 = time.perf_counter()
        out = body(state)
        times.append(time.perf_counter() - t0)
        del state
    return statistics.median(times), out


def run_ours(d: Path, repeats: int) -> dict[str, Any]:
    """Time visualdm's RTree, per-call and batch entry points."""
    from visualdm.spatial.rtree import RTree

    arr = np.load(d / "data.npy")
    n = len(arr)
    items = list(zip(*arr.T.tolist(), range(n), strict=True))
    inserts = list(zip(*np.load(d / "inserts.npy").T.tolist(), range(n, n + 100_000), strict=True))
    pts = np.load(d / "points.npy")
    res: dict[str, Any] = {"hits": {}}

    def fresh_loaded() -> RTree:
        t = RTree(NODE_CAPACITY)
        t.load(items)
        return t

    res["bulk_load"], tree = timed(repeats, lambda _: fresh_loaded())
    res["bulk_load_arrays"], _ = timed(
        repeats, lambda _: RTree(NODE_CAPACITY).load_arrays(arr, np.arange(n, dtype=np.int64))
    )
    for name, (file, _size) in SEARCHES.items():
        qs = np.load(d / f"{file}.npy")
        q_list = qs.tolist()
        res[name], res["hits"][name] = timed(
            repeats, lambda _, q_list=q_list: sum(len(tree.search(q)) for q in q_list)
        )
    pt_list = pts.tolist()
    for k in (1, 10):
        res[f"knn_k{k}"], res["hits"][f"knn_k{k}"] = timed(
            repeats, lambda _, k=k: sum(len(tree.knn(x, y, k)) for x, y in pt_list)
        )
    for name, (file, _size) in SEARCHES.items():
        qs = np.load(d / f"{file}.npy")
        # 1,000 10% queries hold ~10^8 results at once; chunks of 100 keep memory bounded.
        chunk = 100 if name == "search_10pct" else len(qs)

        def batch(_: Any, qs: np.ndarray = qs, chunk: int = chunk) -> int:
            return sum(
                sum(map(len, tree.search_many(qs[s : s + chunk]))) for s in range(0, len(qs), chunk)
            )

        key = name.replace("search_", "search_many_")
        res[key], res["hits"][key] = timed(repeats, batch)
    for k in (1, 10):
        res[f"knn_many_k{k}"], res["hits"][f"knn_many_k{k}"] = timed(
            repeats, lambda _, k=k: sum(map(len, tree.knn_many(pts, k)))
        )
    if tree.knn_many(pts, 10) != [tree.knn(x, y, 10) for x, y in pt_list]:
        raise SystemExit("knn_many disagrees with knn")
    tree = None  # release the index before the insert and remove rounds

    def insert_all(t: RTree) -> None:
        for item in inserts:
            t.insert(item)

    res["insert_100k"], _ = timed(repeats, insert_all, lambda: RTree(NODE_CAPACITY))
    removed = items[:10_000]
    res["remove_10k"], ok = timed(repeats, lambda t: all(map(t.remove, removed)), fresh_loaded)
    if not ok:
        raise SystemExit("a remove failed")
    return res


def run_rtree(d: Path, repeats: int) -> dict[str, Any]:
    """Time the rtree package (libspatialindex), bulk loading from arrays or a stream."""
    from rtree import index

    arr = np.load(d / "data.npy")
    n = len(arr)
    ids = np.arange(n, dtype=np.int64)
    inserts = np.load(d / "inserts.npy")
    pts = np.load(d / "points.npy")
    res: dict[str, Any] = {"hits": {}}

    def props() -> Any:
        p = index.Property()
        p.leaf_capacity = NODE_CAPACITY
        p.index_capacity = NODE_CAPACITY
        # libspatialindex's default (32) must be below the node capacities.
        p.near_minimum_overlap_factor = NODE_CAPACITY // 2
        return p

    def from_arrays() -> Any:
        return index.Index(
            (ids, arr[:, :2].copy(), arr[:, 2:].copy()), properties=props(), interleaved=True
        )

    def from_stream() -> Any:
        rows = arr.tolist()
        return index.Index(
            ((i, tuple(r), None) for i, r in enumerate(rows)), properties=props(), interleaved=True
        )

    res["bulk_load_stream"], tree = timed(repeats, lambda _: from_stream())
    try:
        res["bulk_load_arrays"], tree = timed(repeats, lambda _: from_arrays())
        loader = from_arrays
    except NotImplementedError:
        loader = from_stream
    res["bulk_load"] = min(res["bulk_load_stream"], res.get("bulk_load_arrays", math.inf))
    for name, (file, _size) in SEARCHES.items():
        q_list = np.load(d / f"{file}.npy").tolist()
        res[name], res["hits"][name] = timed(
            repeats, lambda _, q_list=q_list: sum(len(list(tree.intersection(q))) for q in q_list)
        )
        qs = np.load(d / f"{file}.npy")
        key = name.replace("search_", "search_many_")
        res[key], res["hits"][key] = timed(
            repeats, lambda _, qs=qs: int(tree.intersection_v(qs[:, :2], qs[:, 2:])[1].sum())
        )
    pt_list = pts.tolist()
    for k in (1, 10):
        res[f"knn_k{k}"], res["hits"][f"knn_k{k}"] = timed(
            repeats,
            lambda _, k=k: sum(len(list(tree.nearest((x, y, x, y), k))) for x, y in pt_list),
        )
        res[f"knn_many_k{k}"], _ = timed(
            repeats, lambda _, k=k: tree.nearest_v(pts, pts, num_results=k, strict=True)
        )
    tree = None  # release the index before the insert and remove rounds

    def insert_all(t: Any) -> None:
        for i, box in enumerate(inserts.tolist()):
            t.insert(n + i, box)

    res["insert_100k"], _ = timed(
        repeats, insert_all, lambda: index.Index(properties=props(), interleaved=True)
    )
    rows = arr[:10_000].tolist()

    def remove_all(t: Any) -> None:
        for i, box in enumerate(rows):
            t.delete(i, box)

    res["remove_10k"], _ = timed(repeats, remove_all, loader)
    return res


def ensure_rbush() -> None:
    """Install rbush@4.0.1 and rbush-knn into bench/node_modules (git-ignored) if missing."""
    if (BENCH_DIR / "node_modules" / "rbush-knn").is_dir():
        return
    subprocess.run(
        [
            "npm",
            "install",
            "--no-save",
            "--no-package-lock",
            "--prefix",
            str(BENCH_DIR),
            "rbush@4.0.1",
            "rbush-knn",
        ],
        check=True,
    )


def run_engine(engine: str, d: Path, repeats: int) -> dict[str, Any]:
    """Run one engine in a child process and return its parsed JSON result."""
    if engine == "rbush_node":
        ensure_rbush()
        cmd = ["node", str(BENCH_DIR / "spatial_rbush.mjs"), str(d), str(repeats)]
    else:
        cmd = [
            sys.executable,
            __file__,
            "--worker",
            engine,
            "--data",
            str(d),
            "--repeats",
            str(repeats),
        ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise SystemExit(f"{engine} failed ({proc.returncode}):\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    """Parse arguments, then act as coordinator or as one engine's worker."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20240501)
    parser.add_argument("--engines", default="ours,rtree,rbush_node")
    parser.add_argument("--worker", choices=["ours", "rtree"], help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        res = (run_ours if args.worker == "ours" else run_rtree)(args.data, args.repeats)
        res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(res))
        return

    tmp = Path(tempfile.mkdtemp(prefix="spatial-bench-"))
    try:
        write_data(tmp, args.n, args.seed)
        results: dict[str, Any] = {"n": args.n}
        for engine in args.engines.split(","):
            print(f"running {engine} ...", flush=True)
            results[engine] = run_engine(engine, tmp, args.repeats)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    engines = [e for e in results if e != "n"]
    reference = results[engines[0]]["hits"]
    for engine in engines:
        hits = results[engine]["hits"]
        for name in SEARCHES:
            for key in (name, name.replace("search_", "search_many_")):
                if key in hits and hits[key] != reference[name]:
                    raise SystemExit(
                        f"hit count mismatch: {engine} {key} {hits[key]} != {reference[name]}"
                    )
    print(
        f"n={args.n}, node capacity {NODE_CAPACITY}, median of {args.repeats}; seconds (RSS in MB)"
    )
    extra = sorted({k for e in engines for k in results[e] if k not in ROWS and k != "hits"})
    print(f"{'':24}" + "".join(f"{e:>14}" for e in engines))
    for row in ROWS + extra:
        cells = "".join(
            f"{results[e][row]:>14.4f}" if row in results[e] else f"{'-':>14}" for e in engines
        )
        print(f"{row:24}{cells}")
    for engine in engines:
        results[engine].pop("hits")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
