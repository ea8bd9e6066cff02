"""
test_smtp.py: the SMTP server side, seen by real clients.

Each test starts its own moatd and, where mail is relayed, a Postfix
smtp-sink (or the raw sink) as the next hop on loopback.
"""
import re
import subprocess
import time

from moat_harness import (QID_RE, SMTP_SOURCE, POSTFIX_LIBS, dot_stuff, expect, make_message,
                          require, split_message, stays_false)

TEXTBOOK_HEADERS = [
    ("From", "Bob Example <bob@company.org>"),
    ("To", "Alice Example <alice@company.com>"),
    ("Cc", "theboss@company.com"),
    ("Date", "Tue, 15 Jan 2008 16:02:43 -0500"),
    ("Subject", "Test message"),
]
TEXTBOOK_BODY = [
    "Hello Alice.",
    "This is a test message with 5 header fields and 4 lines in the message body.",
    "Your friend,",
    "Bob",
]


def strip_received(lines):
    """(values of the leading Received: headers, the lines after them)."""
    received, i = [], 0
    while i < len(lines) and lines[i].lower().startswith("received:"):
        value = lines[i].split(":", 1)[1].strip()
        i += 1
        while i < len(lines) and lines[i][:1] in (" ", "\t"):
            value += " " + lines[i].strip()
            i += 1
        received.append(value)
    return received, lines[i:]


def expected_lines(headers, body):
    return [f"{k}: {v}" for k, v in headers] + [""] + list(body)


def assert_intact(msg, headers, body, qid):
    """The sink got exactly our lines, after one Received: naming qid."""
    received, rest = strip_received(msg.lines)
    want = expected_lines(headers, body)
    assert received, f"no Received: header added; message starts {msg.lines[:3]}"
    assert qid in received[0], f"first Received: does not name {qid}: {received[0]!r}"
    if rest != want:
        diff = [f"line {i}: got {g!r} want {w!r}"
                for i, (g, w) in enumerate(zip(rest + [None] * len(want), want + [None] * len(rest)))
                if g != w]
        raise AssertionError("message changed in transit:\n  " + "\n  ".join(diff[:10]))


def test_textbook_dialogue(ctx):
    """HELO, MAIL, RCPT, DATA, QUIT as in every SMTP primer; relayed intact."""
    sink = ctx.sink()
    moat = ctx.moat(relay_host=sink)
    s = moat.smtp()
    try:
        expect(s.helo("relay.company.org"), 250, "HELO")
        expect(s.docmd("MAIL FROM:<bob@company.org>"), 250, "MAIL")
        expect(s.docmd("RCPT TO:<alice@company.com>"), 250, "RCPT")
        expect(s.docmd("DATA"), 354, "DATA")
        s.send(dot_stuff(make_message(TEXTBOOK_HEADERS, TEXTBOOK_BODY)))
        text = expect(s.getreply(), 250, "end of data")
        m = QID_RE.search(text)
        assert m and text.startswith("2.0.0 Ok: queued as "), f"final reply {text!r}"
        qid = m.group(1)
        expect(s.docmd("QUIT"), 221, "QUIT")
    finally:
        s.close()
    msg = sink.wait_messages(1)[0]
    assert msg.sender == "bob@company.org", f"envelope sender {msg.mail_args!r}"
    assert msg.recipients == ["alice@company.com"], f"envelope recipients {msg.rcpt_args!r}"
    assert_intact(msg, TEXTBOOK_HEADERS, TEXTBOOK_BODY, qid)
    assert stays_false(lambda: sink.count() > 1, 1.5), "more than one message at the sink"


def test_swaks(ctx):
    """swaks as the client; the message arrives with its body."""
    sink = ctx.sink()
    moat = ctx.moat(relay_host=sink)
    body = "First line from swaks.\nSecond line, with a .dot later: .\n.leading dot line"
    r = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{moat.port}", "--helo", "swaks.company.org",
         "--from", "bob@company.org", "--to", "alice@company.com",
         "--header", "Subject: swaks test", "--header", "X-Test-Id: swaks-1",
         "--body", body, "--timeout", "20"],
        capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"swaks exited {r.returncode}:\n{r.stdout}{r.stderr}"
    m = QID_RE.search(r.stdout)
    assert m, f"no 'queued as' in swaks output:\n{r.stdout}"
    msg = sink.wait_messages(1)[0]
    assert msg.header("X-Test-Id") == ["swaks-1"], f"headers {msg.headers}"
    received, _ = strip_received(msg.lines)
    assert received and m.group(1) in received[0], f"Received: {received}"
    assert msg.body[:3] == body.split("\n"), f"body {msg.body}"


def test_local_delivery(ctx):
    """postmaster@localhost and Postmaster@LOCALHOST land in maildir/postmaster/new."""
    moat = ctx.moat()
    sent = []
    for n, rcpt in enumerate(["postmaster@localhost", "Postmaster@LOCALHOST"]):
        headers = [("From", "bob@company.org"), ("To", rcpt), ("Subject", f"local {n}"),
                   ("X-Test-Id", f"local-{n}")]
        body = [f"Local delivery number {n}.", "", "..with a leading dot", "last line"]
        moat.send("bob@company.org", [rcpt], make_message(headers, body))
        sent.append((headers, body))
    files = moat.wait_maildir("postmaster", 2)
    assert len(files) == 2, f"expected 2 files, got {[f.name for f in files]}"
    got = {}
    for f in files:
        lines = re.split(r"\r?\n", f.read_bytes().decode(errors="replace"))
        hdrs, body = split_message(lines)
        ids = [h.split(":", 1)[1].strip() for h in hdrs if h.lower().startswith("x-test-id:")]
        assert len(ids) == 1, f"{f.name}: X-Test-Id headers {ids}"
        while body and body[-1] == "":
            body.pop()
        got[ids[0]] = (hdrs, body)
    for n, (headers, body) in enumerate(sent):
        hdrs, gbody = got[f"local-{n}"]
        for k, v in headers:
            assert f"{k}: {v}" in hdrs, f"local-{n}: header {k} missing or changed: {hdrs}"
        assert gbody == body, f"local-{n}: body {gbody!r}, sent {body!r}"


def test_pipelining(ctx):
    """RFC 2920: MAIL+RCPT+RCPT+DATA in one write; replies in order, batched."""
    sink = ctx.sink()
    moat = ctx.moat(relay_host=sink)
    c = moat.raw()
    assert c.reply()[0] == 220
    c.send("EHLO pipe.company.org\r\n")
    code, lines = c.reply()
    assert code == 250 and any(x.upper() == "PIPELINING" for x in lines), f"EHLO {lines}"
    qids = []
    for n, rcpts in enumerate([["x@company.com", "y@company.com"], ["z@company.com"]]):
        batch = f"MAIL FROM:<pipe@company.org>\r\n" + "".join(
            f"RCPT TO:<{r}>\r\n" for r in rcpts) + "DATA\r\n"
        c.send(batch)
        first = c.recv_some()
        # The replies to MAIL and every RCPT come in one write (RFC 2920 3.2).
        assert first.count(b"\r\n") >= 1 + len(rcpts), \
            f"transaction {n}: first read held only {first!r}"
        codes = [c.reply()[0] for _ in range(1 + len(rcpts) + 1)]
        assert codes == [250] * (1 + len(rcpts)) + [354], f"transaction {n}: replies {codes}"
        c.send(dot_stuff(make_message([("Subject", f"pipelined {n}"), ("X-Test-Id", f"pipe-{n}")],
                                      [f"pipelined body {n}"])))
        code, lines = c.reply()
        m = QID_RE.search(lines[-1])
        assert code == 250 and m, f"transaction {n}: end of data {code} {lines}"
        qids.append(m.group(1))
    c.send("QUIT\r\n")
    assert c.reply()[0] == 221
    assert qids[0] != qids[1], f"same queue id twice: {qids}"
    msgs = sink.wait_messages(2)
    by_id = {}
    for msg in msgs:
        by_id.setdefault(msg.header("X-Test-Id")[0], set()).update(msg.recipients)
    assert by_id == {"pipe-0": {"x@company.com", "y@company.com"}, "pipe-1": {"z@company.com"}}, \
        f"recipients at the sink: {by_id}"


def test_relay_refused(ctx):
    """Not an open relay: foreign domains refused; relay_domains accepted."""
    sink = ctx.sink()
    moat = ctx.moat(relay_host=sink, relay_networks="192.0.2.0/24", relay_domains="company.com")
    c = moat.raw()
    assert c.reply()[0] == 220
    c.send("EHLO outsider.example.org\r\n")
    assert c.reply()[0] == 250
    c.send("MAIL FROM:<spammer@example.org>\r\n")
    assert c.reply()[0] == 250
    for rcpt in ["victim@example.net", "victim@EXAMPLE.NET", "@company.com:mallory@example.net"]:
        c.send(f"RCPT TO:<{rcpt}>\r\n")
        code, lines = c.reply()
        if rcpt.startswith("@"):
            assert 500 <= code < 600, f"RCPT {rcpt}: {code} {lines}"
        else:
            assert code == 554 and lines[-1].startswith("5.7.1"), f"RCPT {rcpt}: {code} {lines}"
    c.send("DATA\r\n")
    code, lines = c.reply()
    assert 500 <= code < 600, f"DATA with no accepted recipient: {code} {lines}"
    c.send("RSET\r\n")
    assert c.reply()[0] == 250
    c.send("MAIL FROM:<partner@example.org>\r\n")
    assert c.reply()[0] == 250
    for rcpt in ["alice@company.com", "bob@COMPANY.COM"]:
        c.send(f"RCPT TO:<{rcpt}>\r\n")
        code, lines = c.reply()
        assert code == 250, f"RCPT {rcpt} (relay_domains): {code} {lines}"
    c.send("DATA\r\n")
    assert c.reply()[0] == 354
    c.send(dot_stuff(make_message([("Subject", "inbound"), ("X-Test-Id", "inbound-1")], ["hi"])))
    code, lines = c.reply()
    assert code == 250, f"end of data {code} {lines}"
    c.send("QUIT\r\n")
    msgs = sink.wait_messages(1)
    assert stays_false(lambda: sink.count() > 1, 2), "more than one message reached the sink"
    rcpts = {r.lower() for r in msgs[0].recipients}
    assert rcpts == {"alice@company.com", "bob@company.com"}, f"recipients {msgs[0].rcpt_args}"
    for m in msgs:
        assert not any("example.net" in r.lower() for r in m.recipients), m.rcpt_args


def test_recipient_limit(ctx):
    """smtpd_recipient_limit 3: the 4th RCPT gets 452 4.5.3; 3 get the mail."""
    sink = ctx.sink()
    moat = ctx.moat(relay_host=sink, smtpd_recipient_limit=3)
    s = moat.smtp()
    try:
        expect(s.ehlo("limit.company.org"), 250, "EHLO")
        expect(s.docmd("MAIL FROM:<bob@company.org>"), 250, "MAIL")
        for n in range(1, 4):
            expect(s.docmd(f"RCPT TO:<r{n}@company.com>"), 250, f"RCPT {n}")
        text = expect(s.docmd("RCPT TO:<r4@company.com>"), 452, "RCPT 4")
        assert text.startswith("4.5.3"), f"RCPT 4 text {text!r}"
        expect(s.docmd("DATA"), 354, "DATA")
        s.send(dot_stuff(make_message([("Subject", "limit")], ["four recipients tried"])))
        expect(s.getreply(), 250, "end of data")
        s.docmd("QUIT")
    finally:
        s.close()
    msgs = sink.wait_messages(1)
    time.sleep(1.5)
    rcpts = sorted(r for m in sink.messages() for r in m.recipients)
    assert rcpts == ["r1@company.com", "r2@company.com", "r3@company.com"], f"delivered to {rcpts}"
    assert msgs


def test_size_limit(ctx):
    """message_size_limit 2048: SIZE 2048 advertised; 552 for SIZE=5000 and for 4 KB."""
    sink = ctx.sink()
    moat = ctx.moat(relay_host=sink, message_size_limit=2048)
    c = moat.raw()
    assert c.reply()[0] == 220
    c.send("EHLO big.company.org\r\n")
    code, lines = c.reply()
    assert code == 250 and "SIZE 2048" in [x.upper() for x in lines], f"EHLO {lines}"
    c.send("MAIL FROM:<bob@company.org> SIZE=5000\r\n")
    code, lines = c.reply()
    assert code == 552, f"MAIL SIZE=5000: {code} {lines}"
    c.send("MAIL FROM:<bob@company.org>\r\n")
    assert c.reply()[0] == 250
    c.send("RCPT TO:<alice@company.com>\r\n")
    assert c.reply()[0] == 250
    c.send("DATA\r\n")
    assert c.reply()[0] == 354
    big = make_message([("Subject", "too big")], ["x" * 70] * 60)   # about 4.3 KB
    c.send(dot_stuff(big))
    code, lines = c.reply()
    assert code == 552 and lines[-1].startswith("5.3.4"), f"4 KB message: {code} {lines}"
    # The session goes on: a small message still gets through.
    c.send("MAIL FROM:<bob@company.org>\r\n")
    assert c.reply()[0] == 250
    c.send("RCPT TO:<alice@company.com>\r\n")
    assert c.reply()[0] == 250
    c.send("DATA\r\n")
    assert c.reply()[0] == 354
    c.send(dot_stuff(make_message([("Subject", "small"), ("X-Test-Id", "small-1")], ["small"])))
    code, lines = c.reply()
    assert code == 250, f"small message: {code} {lines}"
    c.send("QUIT\r\n")
    msgs = sink.wait_messages(1)
    assert stays_false(lambda: sink.count() > 1, 2), "the big message reached the sink"
    assert msgs[0].header("X-Test-Id") == ["small-1"], msgs[0].headers


SMUGGLE_ENDINGS = {
    "LF.LF": b"\n.\n",
    "CRLF.LF": b"\r\n.\n",
    "LF.CRLF": b"\n.\r\n",
    "CR.CR": b"\r.\r",
}


def test_smuggling_refused(ctx):
    """Bare LF/CR end-of-data look-alikes: one 5xx, no second transaction."""
    sink = ctx.sink()
    moat = ctx.moat(relay_host=sink)
    for label, ending in SMUGGLE_ENDINGS.items():
        c = moat.raw()
        assert c.reply()[0] == 220
        c.send("EHLO smuggle.company.org\r\n")
        assert c.reply()[0] == 250
        c.send("MAIL FROM:<bob@company.org>\r\nRCPT TO:<alice@company.com>\r\nDATA\r\n")
        codes = [c.reply()[0] for _ in range(3)]
        assert codes == [250, 250, 354], f"{label}: {codes}"
        c.send(b"Subject: smuggling " + label.encode() + b"\r\n\r\nouter body" + ending +
               b"MAIL FROM:<smuggler@evil.example>\r\nRCPT TO:<victim@company.com>\r\n"
               b"DATA\r\nSubject: smuggled\r\n\r\nsmuggled body\r\n.\r\n")
        code, lines = c.reply()
        assert 500 <= code < 600, f"{label}: reply {code} {lines}"
        more = c.pending_replies(1.0)
        assert not more, f"{label}: further replies after the 5xx: {more}"
        try:
            c.send("NOOP\r\n")
            code2, _ = c.reply()
            assert code2 == 250, f"{label}: NOOP after the 5xx got {code2}"
        except (ConnectionError, OSError):
            pass   # closing the session after a smuggling attempt is fine too
        c.close()
    qid = moat.send("bob@company.org", ["alice@company.com"],
                    make_message([("Subject", "control"), ("X-Test-Id", "control")], ["ok"]))
    msgs = sink.wait_messages(1)
    assert stays_false(lambda: sink.count() > 1, 2), "a smuggled message reached the sink"
    assert msgs[0].header("X-Test-Id") == ["control"], msgs[0].headers
    assert "smuggler@evil.example" not in moat.log(), "the smuggled MAIL FROM reached the queue"
    assert qid


def test_bare_lf_command(ctx):
    """A command line ending in bare LF gets 500 5.5.2 and is not executed."""
    moat = ctx.moat()
    c = moat.raw()
    assert c.reply()[0] == 220
    c.send("EHLO lf.company.org\r\n")
    assert c.reply()[0] == 250
    c.send(b"MAIL FROM:<bare@company.org>\nNOOP\r\n")
    code, lines = c.reply()
    assert code == 500 and lines[-1].startswith("5.5.2"), f"bare LF command: {code} {lines}"
    c.pending_replies(1.0)
    c.send("RCPT TO:<postmaster@localhost>\r\n")
    code, lines = c.reply()
    assert code == 503, f"RCPT after the refused MAIL: {code} {lines} (MAIL must not have run)"


def test_bare_lf_networks(ctx):
    """bare_lf_networks 127.0.0.0/8: a LF-only message is accepted and sent on with CRLF."""
    raw = ctx.rawsink()
    moat = ctx.moat(relay_host=f"[127.0.0.1]:{raw.port}", bare_lf_networks="127.0.0.0/8")
    c = moat.raw()
    assert c.reply()[0] == 220
    c.send("EHLO lf.company.org\r\n")
    assert c.reply()[0] == 250
    c.send("MAIL FROM:<bob@company.org>\r\n")
    assert c.reply()[0] == 250
    c.send("RCPT TO:<alice@company.com>\r\n")
    assert c.reply()[0] == 250
    c.send("DATA\r\n")
    assert c.reply()[0] == 354
    c.send(b"Subject: lf only\nX-Test-Id: lf-1\n\nline one\nline two\r\n.\r\n")
    code, lines = c.reply()
    assert code == 250, f"LF-only message from a bare_lf_networks client: {code} {lines}"
    c.send("QUIT\r\n")
    msg = raw.wait_messages(1)[0]["raw"]
    assert re.search(rb"(?<!\r)\n", msg) is None, f"bare LF relayed: {msg!r}"
    assert re.search(rb"\r(?!\n)", msg) is None, f"bare CR relayed: {msg!r}"
    for want in (b"X-Test-Id: lf-1\r\n", b"\r\n\r\nline one\r\nline two\r\n"):
        assert want in msg, f"{want!r} not in {msg!r}"


def test_smtp_source_burst(ctx):
    """Postfix's smtp-source: 50 messages over 5 sessions, all relayed."""
    require(SMTP_SOURCE, "smtp-source")
    sink = ctx.sink()
    moat = ctx.moat(relay_host=sink)
    r = subprocess.run(
        [str(SMTP_SOURCE), "-s", "5", "-m", "50", "-l", "2048", "-f", "bob@company.org",
         "-t", "alice@company.com", f"127.0.0.1:{moat.port}"],
        env={"LD_LIBRARY_PATH": str(POSTFIX_LIBS), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"smtp-source exited {r.returncode}: {r.stdout}{r.stderr}"
    sink.wait_messages(50, timeout=60)
    assert stays_false(lambda: sink.count() > 50, 1), f"{sink.count()} messages for 50 sent"


def test_large_message_byte_exact(ctx):
    """A 300 KB message (five IPC chunks each way, lines of every length
    up to 998, dot-stuffed lines, 8-bit bytes) reaches the next hop byte
    for byte, behind one Received: header."""
    import random
    import smtplib
    raw = ctx.rawsink()
    moat = ctx.moat(relay_host=f"[127.0.0.1]:{raw.port}")
    rnd = random.Random(7)
    lines = [b"From: <bob@company.org>", b"Subject: large", b"X-Test-Id: large-1", b""]
    size = 0
    while size < 300 * 1024:
        n = rnd.randint(0, 998)
        line = bytes(rnd.choice(b"abcXYZ .-=\xe9\xff") for _ in range(n))
        if rnd.random() < 0.05:
            line = b"." + line[:997]
        lines.append(line)
        size += len(line) + 2
    body = b"\r\n".join(lines) + b"\r\n"
    s = smtplib.SMTP("127.0.0.1", moat.port, local_hostname="large.company.org", timeout=60)
    s.ehlo()
    # smtplib dot-stuffs; 8BITMIME because of the 8-bit bytes.
    s.sendmail("bob@company.org", ["alice@company.com"], body, mail_options=["BODY=8BITMIME"])
    s.quit()
    got = raw.wait_messages(1, timeout=60)[0]["raw"]
    assert got.startswith(b"Received: "), got[:80]
    start = got.index(b"\r\nFrom: <bob@company.org>") + 2
    # The sink keeps the raw, still dot-stuffed DATA bytes with CRLF.CRLF.
    unstuffed = re.sub(rb"(?m)^\.", b"", got[start:-5].replace(b"\r\n", b"\n")).replace(b"\n", b"\r\n")
    assert got.endswith(b"\r\n.\r\n")
    assert unstuffed + b"\r\n" == body, \
        f"message changed in transit ({len(unstuffed) + 2} bytes against {len(body)})"
