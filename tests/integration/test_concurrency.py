"""
test_concurrency.py: jobs per (message, next hop), the per-destination
connection limit and connection reuse, against SMTP servers of the test's
own that count how many connections they hold at once.
"""
import asyncio
import re
import smtplib
import threading
import time

from moat_harness import LOOPBACK, free_port, make_message, wait_until


class CountingSink:
    """An SMTP server (asyncio, in a thread) that accepts everything and
    records the most connections it ever had open at once."""

    def __init__(self, delay=0.05, rcpt_reply=b"250 2.1.5 Ok", host=LOOPBACK, port=None):
        self.host = host
        self.port = port or free_port()
        self.delay = delay          # before answering the final dot
        self.rcpt_reply = rcpt_reply
        self.lock = threading.Lock()
        self.open = 0
        self.peak = 0
        self.connections = 0
        self.messages = 0
        self.rcpts = []             # recipients of every message, in order
        self.times = []             # when each message was taken
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not self.ready.wait(10):
            raise AssertionError("counting sink did not start")

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._session, self.host, self.port))
        self.ready.set()
        self.loop.run_forever()

    async def _session(self, reader, writer):
        with self.lock:
            self.open += 1
            self.connections += 1
            self.peak = max(self.peak, self.open)
        try:
            await self._dialogue(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            with self.lock:
                self.open -= 1
            writer.close()

    async def _dialogue(self, reader, writer):
        writer.write(b"220 sink.test ESMTP counting sink\r\n")
        rcpts = []
        while True:
            line = await reader.readline()
            if not line:
                return
            verb = line[:4].upper()
            if verb == b"EHLO":
                writer.write(b"250-sink.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
            elif verb in (b"HELO", b"RSET", b"NOOP"):
                rcpts = [] if verb == b"RSET" else rcpts
                writer.write(b"250 2.0.0 Ok\r\n")
            elif verb == b"MAIL":
                rcpts = []
                writer.write(b"250 2.1.0 Ok\r\n")
            elif verb == b"RCPT":
                m = re.search(rb"<([^>]*)>", line)
                if self.rcpt_reply.startswith(b"2"):
                    rcpts.append(m.group(1).decode() if m else "")
                writer.write(self.rcpt_reply + b"\r\n")
            elif verb == b"DATA" and not rcpts:
                writer.write(b"554 5.5.1 no valid recipients\r\n")
            elif verb == b"DATA":
                writer.write(b"354 go ahead\r\n")
                await writer.drain()
                while (await reader.readline()) not in (b".\r\n", b""):
                    pass
                await asyncio.sleep(self.delay)
                with self.lock:
                    self.messages += 1
                    self.rcpts.append(list(rcpts))
                    self.times.append(time.monotonic())
                writer.write(b"250 2.0.0 Ok: queued\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 2.0.0 Bye\r\n")
                await writer.drain()
                return
            else:
                writer.write(b"502 5.5.2 unknown command\r\n")
            await writer.drain()

    def count(self):
        with self.lock:
            return self.messages

    def stop(self):
        def shut():
            self.server.close()
            self.loop.stop()
        self.loop.call_soon_threadsafe(shut)
        self.thread.join(5)


def counting_sink(ctx, delay=0.05, **kw):
    sink = CountingSink(delay, **kw)
    ctx.add_cleanup(sink.stop)
    return sink


def test_destination_concurrency_limit(ctx):
    """300 messages to one next hop, limit 3, 8 agents: never more than 3
    connections at once, all delivered, connections reused; and a message
    for another next hop, queued behind that backlog, does not wait for it."""
    sink = counting_sink(ctx, delay=0.1)
    other = counting_sink(ctx, delay=0, host="127.0.0.2", port=sink.port)
    # No relay_host: an address literal domain is its own next hop,
    # smtp:[127.0.0.1]:PORT and smtp:[127.0.0.2]:PORT.
    moat = ctx.moat(relay_port=sink.port, relay_destination_concurrency_limit=3,
                    delivery_agents=8)
    n = 300
    with smtplib.SMTP(LOOPBACK, moat.port, timeout=30) as s:
        s.ehlo("client.test")
        for i in range(n):
            msg = make_message([("Subject", f"load {i}"), ("X-Test-Id", f"load-{i}")],
                               [f"message {i} of {n}"])
            s.sendmail("load@company.org", [f"someone@[{LOOPBACK}]"], msg)
        s.sendmail("load@company.org", ["else@[127.0.0.2]"],
                   make_message([("Subject", "elsewhere")], ["not behind the backlog"]))
    wait_until(lambda: sink.count() >= n, 120,
               f"{n} messages at the counting sink (got {sink.count()})")
    wait_until(lambda: other.count() >= 1, 30, "the message for the other next hop")
    wait_until(lambda: not moat.queue_ids(), 30, "the queue to be empty")
    time.sleep(0.5)
    assert sink.count() == n, f"sink got {sink.count()} messages, wanted {n}"
    assert sink.peak <= 3, f"{sink.peak} connections open at once; the limit is 3"
    assert sink.peak >= 2, f"only {sink.peak} connection at a time: no concurrency"
    # The scheduler reads 64 due rows in age order before it looks per
    # next hop: with more than that still waiting, only the per-next-hop
    # search could have found the newest message.
    behind = len([t for t in sink.times if t > other.times[0]])
    assert behind > 64, \
        f"the other next hop's message went out with only {behind} of the backlog left"
    log = moat.log()
    dispatched = re.findall(r"status=dispatched", log)
    assert len(dispatched) == n + 1, f"{len(dispatched)} jobs for {n + 1} messages"
    conns = [int(c) for c in re.findall(r"nexthop=smtp:\S+ reuse=\w+ conns=(\d+)", log)]
    assert conns and max(conns) <= 3, f"queue-manager counted up to {max(conns)} connections"
    reused = len(re.findall(r"reuse=yes", log))
    assert reused >= n // 2, f"only {reused} of {n} jobs went to a cached connection"
    assert sink.connections < n, \
        f"{sink.connections} connections for {n} messages: none was reused"


def test_three_next_hops_three_jobs(ctx):
    """A message to three domains on three next hops is three jobs, each
    to its own server with only its own recipients."""
    first = counting_sink(ctx, delay=0, host="127.0.0.2")
    sinks = [first] + [counting_sink(ctx, delay=0, host=h, port=first.port)
                       for h in ("127.0.0.3", "127.0.0.4")]
    moat = ctx.moat(relay_port=first.port, delivery_agents=4)
    rcpts = ["user@[127.0.0.2]", "user@[127.0.0.3]", "user@[127.0.0.4]",
             "other@[127.0.0.3]"]
    qid = moat.send("multi@company.org", rcpts,
                    make_message([("Subject", "three hops")], ["one message, three jobs"]))
    for s in sinks:
        wait_until(lambda s=s: s.count() >= 1, 30, "a message at each next hop")
    wait_until(lambda: qid not in moat.queue_ids(), 30, f"{qid} to leave the queue")
    assert [s.rcpts for s in sinks] == [[["user@[127.0.0.2]"]],
                                        [["user@[127.0.0.3]", "other@[127.0.0.3]"]],
                                        [["user@[127.0.0.4]"]]], [s.rcpts for s in sinks]
    log = moat.log()
    jobs = re.findall(rf"id={qid} agent=\d+ job=(\d+) nrcpt=(\d+) transport=relay "
                      rf"nexthop=(\S+)", log)
    assert len(jobs) == 3, f"{len(jobs)} jobs for {qid}:\n{jobs}"
    assert len({j[0] for j in jobs}) == 3, jobs
    hops = sorted((h, int(n)) for _, n, h in jobs)
    assert hops == [(f"smtp:[127.0.0.{k}]:{first.port}", n)
                    for k, n in ((2, 1), (3, 2), (4, 1))], hops
    for r in rcpts:
        assert re.search(rf"id={qid} to=<{re.escape(r)}> .*status=sent", log), \
            f"no status=sent line for {r}"


def write_transport(moat, lines):
    path = moat.dir / "transport"
    path.write_text("".join(f"{k} {v}\n" for k, v in lines))
    return path


def test_transport_maps_next_hops(ctx):
    """transport_maps sends three domains to three next hops: one message
    to them is three jobs, each to its own server."""
    sinks = [counting_sink(ctx, delay=0) for _ in range(3)]
    domains = ["a.example", "b.example", "c.example"]
    moat = ctx.moat(start=False, delivery_agents=4)
    table = write_transport(moat, [(d, f"smtp:[{LOOPBACK}]:{s.port}")
                                   for d, s in zip(domains, sinks)])
    moat.settings["transport_maps"] = str(table)
    moat.conf_path.write_text("".join(f"{k} = {v}\n" for k, v in moat.settings.items()))
    moat.start()
    rcpts = [f"user@{d}" for d in domains] + ["other@b.example"]
    qid = moat.send("multi@company.org", rcpts,
                    make_message([("Subject", "three hops")], ["one message, three jobs"]))
    for s in sinks:
        wait_until(lambda s=s: s.count() >= 1, 30, "a message at each next hop")
    wait_until(lambda: qid not in moat.queue_ids(), 30, f"{qid} to leave the queue")
    assert [s.rcpts for s in sinks] == [[["user@a.example"]],
                                        [["user@b.example", "other@b.example"]],
                                        [["user@c.example"]]], [s.rcpts for s in sinks]
    log = moat.log()
    jobs = re.findall(rf"id={qid} agent=\d+ job=(\d+) nrcpt=(\d+) transport=relay "
                      rf"nexthop=(\S+)", log)
    assert len(jobs) == 3, f"{len(jobs)} jobs for {qid}:\n{jobs}"
    assert len({j[0] for j in jobs}) == 3, jobs
    hops = sorted((h, int(n)) for _, n, h in jobs)
    assert hops == sorted([(f"smtp:[{LOOPBACK}]:{s.port}", n)
                           for s, n in zip(sinks, (1, 2, 1))]), hops
    for r in rcpts:
        assert re.search(rf"id={qid} to=<{re.escape(r)}> .*status=sent", log), \
            f"no status=sent line for {r}"


def test_reload_reroutes_queued_mail(ctx):
    """Mail deferred at one next hop goes to the new one after a reload
    changes the route, without waiting for a restart."""
    refuser = counting_sink(ctx, delay=0, rcpt_reply=b"451 4.3.0 try later")
    taker = counting_sink(ctx, delay=0)
    # A back-off longer than the test: only `moatctl retry` makes the
    # message due again (with the harness's 1 s it could come due by
    # itself, be delivered, and leave retry nothing to find).
    moat = ctx.moat(relay_host=f"[{LOOPBACK}]:{refuser.port}",
                    minimal_backoff_time="300s", maximal_backoff_time="600s")
    qid = moat.send("bob@company.org", ["alice@company.com", "carol@company.net"],
                    make_message([("Subject", "reroute")], ["moved by a reload"]))
    moat.wait_log(rf"id={qid} to=<carol@company.net> .*status=deferred",
                  what=f"{qid} deferred at the first next hop")
    moat.settings["relay_host"] = f"[{LOOPBACK}]:{taker.port}"
    moat.conf_path.write_text("".join(f"{k} = {v}\n" for k, v in moat.settings.items()))
    r = moat.moatctl("reload")
    assert r.returncode == 0, f"{r.stdout}{r.stderr}"
    moat.wait_log(r"event=reload status=ok relay_host=\[127\.0\.0\.1\]:%d" % taker.port,
                  what="queue-manager took the new relay_host")
    r = moat.moatctl("retry", qid)
    assert r.returncode == 0, f"{r.stdout}{r.stderr}"
    wait_until(lambda: taker.count() >= 1, 30, "the message at the new next hop")
    wait_until(lambda: qid not in moat.queue_ids(), 30, f"{qid} to leave the queue")
    assert taker.rcpts == [["alice@company.com", "carol@company.net"]], taker.rcpts
    assert refuser.count() == 0
    log = moat.log()
    hop = re.escape(f"smtp:[{LOOPBACK}]:{taker.port}")
    assert re.search(rf"id={qid} agent=\d+ job=\d+ nrcpt=2 transport=relay nexthop={hop} ",
                     log), "no job for the new next hop with both recipients"
