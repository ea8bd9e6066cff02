"""bench/run, the benchmark of docs/performance.md, kept from rotting.

The benchmark is not a test: its figures depend on the machine.  This runs
it once, small (200 messages, one scenario, one repetition, both MTAs), on
the suite's own build, and checks that it works end to end: it exits 0,
prints the side-by-side table with a figure for each MTA on every line and
each MTA's CPU split, writes the JSON of the run, and leaves no process or
work directory behind.  The sink's exact count is bench.py's own guard
(a LOSS or EXCESS makes it exit 1).
"""
import json
import os
import subprocess
import tempfile
from pathlib import Path

import moat_harness as h
from moat_harness import skip_unless_root

ROWS = ("accepted msg/s", "end-to-end msg/s", "CPU s per 1000 msgs (whole machine)",
        "CPU s per 1000 msgs (MTA's processes)", "machine busy %", "hypervisor steal %",
        "latency p50 ms", "latency p99 ms", "peak RSS MiB", "peak PSS MiB")


def _bench_leftovers():
    dirs = {p.name for p in Path("/var/tmp").glob("moat-bench-*") if p.is_dir()}
    procs = set()
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "/var/tmp/moat-bench-" in cmd:
                procs.add(f"{p.name}: {cmd[:120]}")
    return dirs, procs


def test_bench_smoke(ctx):
    """bench/run, 200 messages of 1k/1/new, moat and Postfix: table, JSON, cleanup."""
    skip_unless_root()
    dirs0, _ = _bench_leftovers()
    with tempfile.TemporaryDirectory() as tmp:
        out_json = Path(tmp) / "bench.json"
        env = dict(os.environ, BENCH_MESSAGES="200", BENCH_REPS="1",
                   BENCH_SCENARIOS="1k/1/new", BENCH_MTAS="moat,postfix",
                   BENCH_LATENCY_TX="20", BENCH_BUILD=str(h.BUILD),
                   BENCH_JSON=str(out_json), BENCH_STALL_SECONDS="60")
        r = subprocess.run([str(h.REPO / "bench" / "run")], env=env, capture_output=True,
                           text=True, timeout=280, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, f"bench/run exited {r.returncode}:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
        table = [l for l in r.stdout.splitlines() if l.startswith("| ")]
        for row in ROWS:
            line = next((l for l in table if l.startswith(f"| {row}")), None)
            assert line is not None, f"no row {row!r} in:\n{r.stdout}"
            cells = [c.strip() for c in line.strip("|").split("|")]
            assert len(cells) == 4 and cells[1] != "—" and cells[2] != "—", \
                f"row {row!r} lacks a figure: {line}"
        for mta in ("moat", "postfix"):
            assert f"CPU split, {mta} " in r.stdout, f"no CPU split for {mta}:\n{r.stdout}"
        data = json.loads(out_json.read_text())
        for key in ("moat 1k/1/new", "postfix 1k/1/new"):
            runs = data.get(key)
            assert runs and len(runs) == 1, f"JSON has no single run for {key}: {list(data)}"
            assert runs[0]["e2e"] > 0 and runs[0]["own_cpu"] > 0, f"{key}: {runs[0]}"
        assert "queue-manager" in data["moat 1k/1/new"][0]["split"], data["moat 1k/1/new"][0]
    dirs1, procs1 = _bench_leftovers()
    assert dirs1 <= dirs0, f"bench/run left work directories: {sorted(dirs1 - dirs0)}"
    assert not procs1, f"bench/run left processes: {sorted(procs1)}"
    ctx.note(next(l for l in r.stdout.splitlines() if l.startswith("| end-to-end")))


test_bench_smoke.timeout = 300
