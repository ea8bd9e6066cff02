"""
test_reuse.py: connection reuse and the per-destination connection limit
under load.  1000 messages from Postfix's smtp-source to one destination,
with relay_destination_concurrency_limit = 5 and 10 delivery agents: the
server (an aiosmtpd sink that counts its connections) never sees more
than 5 at once, the agents log event=reuse, far fewer connections than
messages are opened, every message arrives, and the kept connections
are closed (QUIT, IPC_D2Q_UNCACHED) once idle.
"""
import json
import os
import re
import subprocess

import moat_harness as h
from moat_harness import wait_until
from test_routing import Downstream, free_port_on

TOTAL = 1000
LIMIT = 5


def test_reuse_under_load(ctx):
    """1000 messages, limit 5: reuse logged, never more than 5 connections."""
    h.require(h.SMTP_SOURCE, "smtp-source (run ./bootstrap test to unpack Postfix's tools)")
    port = free_port_on("127.0.0.1")
    sink = Downstream(ctx, "127.0.0.1", port)
    moat = ctx.moat(relay_host=f"[127.0.0.1]:{port}", relay_tls="none",
                    delivery_agents=10, relay_destination_concurrency_limit=LIMIT,
                    relay_connection_reuse_limit=100, relay_connection_idle_time="2s",
                    # Not under test here: a session counts against these until
                    # moatd reaps it, which lags on a loaded machine.
                    smtpd_client_limit=1000, smtpd_max_sessions=1000)
    env = dict(os.environ, LD_LIBRARY_PATH=str(h.POSTFIX_LIBS))
    cmd = [str(h.SMTP_SOURCE), "-s", "8", "-m", str(TOTAL), "-l", "2000",
           "-f", "load@company.org", "-t", "bob@reuse.test", "-M", "client.test",
           f"127.0.0.1:{moat.port}"]
    r = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=240)
    assert r.returncode == 0, f"smtp-source failed ({r.returncode}): {r.stdout}{r.stderr}"

    wait_until(lambda: sink.count() >= TOTAL, 240,
               f"{TOTAL} messages at the sink (have {sink.count()})", interval=0.5)
    log = moat.log()
    reuses = re.findall(r"event=reuse count=(\d+)", log)
    assert reuses, "no event=reuse in the log: connections were not reused"
    assert sink.max_conns <= LIMIT, \
        f"the sink saw {sink.max_conns} simultaneous connections, limit {LIMIT}"
    assert sink.total < TOTAL / 5, \
        f"{sink.total} connections for {TOTAL} messages: hardly any reuse"
    assert max(int(n) for n in reuses) <= 100, "a connection outlived its reuse limit"
    ctx.note(f"{sink.count()} messages over {sink.total} connections, at most "
             f"{sink.max_conns} at once; {len(reuses)} reuses logged")
    wait_until(lambda: not moat.queue_ids(), 30, "the queue to be empty")
    # Idle for relay_connection_idle_time: QUIT, and IPC_D2Q_UNCACHED,
    # which the queue-manager takes without complaint.
    moat.wait_log(r"event=uncache reason=idle", timeout=15,
                  what="a kept connection closed after its idle time")
    assert not re.search(r"agent=\d+ .*closed: ", moat.log()), \
        "the queue-manager closed an agent's channel"
    # moatctl stats: the queue-manager's count of jobs and reuses.
    r = moat.moatctl("stats", "--json")
    assert r.returncode == 0, r
    st = json.loads(r.stdout)
    assert st["delivery"]["relay_jobs"] >= TOTAL and \
        0 < st["delivery"]["reused_connections"] < st["delivery"]["relay_jobs"], st
    assert "relay jobs since start:" in moat.moatctl("stats").stdout


test_reuse_under_load.timeout = 330
