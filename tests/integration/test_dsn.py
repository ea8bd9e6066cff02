"""
test_dsn.py: delivery status notifications (RFC 3461 parameters on the
server side, RFC 3464 reports): failure, success and delay notices, and
what NOTIFY, RET, ENVID and ORCPT change in them.

The next hop is an aiosmtpd server that refuses chosen recipients (550)
or everybody for now (450).  The sender is a local address, so each
notice lands in run_dir/maildir/sender/new and is parsed with Python's
email package.
"""
import email
import email.policy
import re
import threading
import time

from moat_harness import Skip, expect, free_port, make_message, dot_stuff, stays_false, wait_until

try:
    from aiosmtpd.controller import Controller
except ImportError:     # the suite installs python3-aiosmtpd
    Controller = None

SENDER = "sender@localhost"
REFUSED_TEXT = "Recipient address rejected: no such user here"
BUSY_TEXT = "Mailbox busy, try again later"


class Downstream:
    """aiosmtpd next hop: 550 for refused addresses, 450 for all when busy."""

    def __init__(self, refuse=(), busy=False):
        self.refuse = {a.lower() for a in refuse}
        self.busy = busy
        self.messages = []
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refuse:
            return f"550 5.1.1 <{address}>: {REFUSED_TEXT}"
        if self.busy:
            return f"450 4.2.0 <{address}>: {BUSY_TEXT}"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 Ok: queued"


def downstream(ctx, **kw):
    """The handler, with the port it will listen on (start_moat starts it)."""
    if Controller is None:
        raise Skip("python3-aiosmtpd is not installed")
    handler = Downstream(**kw)
    handler.port = free_port()
    return handler


def start_moat(ctx, down, **settings):
    """moatd first, then the next hop: moatd is not started from a
    process that already runs the server's event-loop thread."""
    moat = ctx.moat(relay_host=f"[127.0.0.1]:{down.port}", **settings)
    ctl = Controller(down, hostname="127.0.0.1", port=down.port)
    ctl.start()
    ctx.add_cleanup(ctl.stop)
    return moat


def send_dsn(moat, mail_params, rcpts, subject, body="the body of the original"):
    """One transaction with DSN parameters: rcpts is [(address, params)]."""
    s = moat.smtp()
    try:
        code, text = s.ehlo("client.test")
        expect((code, text), 250, "EHLO")
        assert b"DSN" in text.split(b"\n"), f"EHLO does not announce DSN: {text!r}"
        expect(s.docmd(f"MAIL FROM:<{SENDER}>{' ' + mail_params if mail_params else ''}"),
               250, "MAIL")
        for addr, params in rcpts:
            expect(s.docmd(f"RCPT TO:<{addr}>{' ' + params if params else ''}"), 250,
                   f"RCPT {addr}")
        expect(s.docmd("DATA"), 354, "DATA")
        s.send(dot_stuff(make_message([("Subject", subject)], [body])))
        reply = expect(s.getreply(), 250, "end of data")
        expect(s.docmd("QUIT"), 221, "QUIT")
        return reply.split()[-1]
    finally:
        s.close()


def notices(moat, n, timeout=30):
    files = moat.wait_maildir("sender", n, timeout=timeout)
    return [email.message_from_bytes(f.read_bytes(), policy=email.policy.compat32)
            for f in files]


def report(msg):
    """(per-message fields, [per-recipient fields]) of an RFC 3464 report."""
    assert msg.get_content_type() == "multipart/report", msg.get_content_type()
    assert msg.get_param("report-type") == "delivery-status", msg["Content-Type"]
    parts = msg.get_payload()
    assert len(parts) == 3, [p.get_content_type() for p in parts]
    assert parts[0].get_content_type() == "text/plain"
    assert parts[1].get_content_type() == "message/delivery-status"
    blocks = parts[1].get_payload()
    assert len(blocks) >= 2, blocks
    return blocks[0], blocks[1:], parts[2]


def test_dsn_failure_report(ctx):
    """550 for one recipient: RFC 3464 bounce naming it, with ORCPT, ENVID and the reply."""
    down = downstream(ctx, refuse=["bob@company.com"])
    moat = start_moat(ctx, down)
    qid = send_dsn(moat, "ENVID=env+2B42.test",
                   [("bob@company.com", "NOTIFY=FAILURE,DELAY ORCPT=rfc822;orig-bob+40example.net"),
                    ("alice@company.com", "")], "failure report")
    msg = notices(moat, 1)[0]
    assert msg["Subject"] == "Undelivered Mail Returned to Sender", msg["Subject"]
    assert msg["Auto-Submitted"] == "auto-replied"
    per_msg, rcpts, orig = report(msg)
    assert per_msg["Reporting-MTA"] == "dns; moat.test", per_msg.items()
    assert per_msg["Original-Envelope-Id"] == "env+42.test", per_msg.items()
    assert per_msg["Arrival-Date"], per_msg.items()
    assert len(rcpts) == 1, [r.items() for r in rcpts]
    r = rcpts[0]
    assert r["Final-Recipient"] == "rfc822; bob@company.com", r.items()
    assert r["Original-Recipient"] == "rfc822; orig-bob@example.net", r.items()
    assert r["Action"] == "failed", r.items()
    assert r["Status"] == "5.1.1", r.items()
    assert r["Remote-MTA"] == "dns; 127.0.0.1", r.items()
    assert r["Diagnostic-Code"].startswith("smtp; 550 5.1.1"), r.items()
    assert REFUSED_TEXT in r["Diagnostic-Code"], r.items()
    assert r["Last-Attempt-Date"], r.items()
    # No RET: the original's headers only.
    assert orig.get_content_type() == "text/rfc822-headers", orig.get_content_type()
    text = orig.get_payload()
    assert "Subject: failure report" in text and "the body of the original" not in text, text
    moat.wait_log(rf"id={qid}\b.*bounce_id=.*status=bounce-queued")
    # alice got the message.
    wait_until(lambda: any("alice@company.com" in m[0] for m in down.messages), 20,
               "alice's copy at the next hop")


def test_dsn_notify_never_and_ret(ctx):
    """NOTIFY=NEVER: no bounce.  RET=HDRS: headers only.  RET=FULL: the whole message."""
    down = downstream(ctx, refuse=["bob@company.com", "carol@company.com", "dave@company.com"])
    moat = start_moat(ctx, down)
    qid = send_dsn(moat, "", [("bob@company.com", "NOTIFY=NEVER")], "never")
    moat.wait_log(rf"id={qid}\b.*to=<bob@company.com>.*status=bounced")
    wait_until(lambda: qid not in moat.queue_ids(), 20, f"{qid} to leave the queue")
    assert stays_false(lambda: moat.maildir_new("sender"), 3), "a bounce despite NOTIFY=NEVER"

    send_dsn(moat, "RET=HDRS", [("carol@company.com", "NOTIFY=FAILURE")], "headers only",
             body="secret body line")
    msg = notices(moat, 1)[0]
    _, rcpts, orig = report(msg)
    assert rcpts[0]["Final-Recipient"] == "rfc822; carol@company.com"
    assert orig.get_content_type() == "text/rfc822-headers", orig.get_content_type()
    assert "secret body line" not in msg.as_string(), "RET=HDRS returned the body"
    assert "Subject: headers only" in orig.get_payload()

    send_dsn(moat, "RET=FULL", [("dave@company.com", "")], "whole message",
             body="the whole body comes back")
    msgs = notices(moat, 2)
    full = [m for m in msgs if "dave@company.com" in m.as_string()]
    assert len(full) == 1, "no bounce for dave"
    _, rcpts, orig = report(full[0])
    assert orig.get_content_type() == "message/rfc822", orig.get_content_type()
    inner = orig.get_payload()[0]
    assert inner["Subject"] == "whole message", inner.items()
    assert "the whole body comes back" in inner.get_payload(), inner.get_payload()


def test_dsn_success_notices(ctx):
    """NOTIFY=SUCCESS: delivered to a local mailbox; relayed to a next hop without DSN."""
    down = downstream(ctx)
    moat = start_moat(ctx, down)
    send_dsn(moat, "ENVID=ok1", [("rcpt@localhost", "NOTIFY=SUCCESS,FAILURE"),
                                 ("other@localhost", "")], "success local")
    moat.wait_maildir("rcpt", 1)
    msg = notices(moat, 1)[0]
    assert msg["Subject"] == "Successful Mail Delivery Report", msg["Subject"]
    per_msg, rcpts, orig = report(msg)
    assert per_msg["Original-Envelope-Id"] == "ok1"
    assert len(rcpts) == 1, [r.items() for r in rcpts]
    assert rcpts[0]["Final-Recipient"] == "rfc822; rcpt@localhost", rcpts[0].items()
    assert rcpts[0]["Action"] == "delivered", rcpts[0].items()
    assert rcpts[0]["Status"].startswith("2."), rcpts[0].items()
    assert orig.get_content_type() == "text/rfc822-headers"

    send_dsn(moat, "", [("far@company.com", "NOTIFY=SUCCESS")], "success relayed")
    msgs = notices(moat, 2)
    relayed = [m for m in msgs if "far@company.com" in m.as_string()]
    assert len(relayed) == 1, "no success notice for the relayed recipient"
    _, rcpts, _ = report(relayed[0])
    assert rcpts[0]["Action"] == "relayed", rcpts[0].items()
    assert rcpts[0]["Remote-MTA"] == "dns; 127.0.0.1", rcpts[0].items()
    # Without NOTIFY=SUCCESS, a delivery gives no notice.
    send_dsn(moat, "", [("plain@company.com", "")], "no notice")
    wait_until(lambda: any("plain@company.com" in m[0] for m in down.messages), 20,
               "plain's copy at the next hop")
    assert stays_false(lambda: len(moat.maildir_new("sender")) > 2, 3), \
        "a success notice without NOTIFY=SUCCESS"


def test_dsn_delay_warning_once(ctx):
    """A message deferred past delay_warning_time: one warning (Action: delayed), only one."""
    down = downstream(ctx, busy=True)
    moat = start_moat(ctx, down, delay_warning_time="2s", maximal_queue_lifetime="1h")
    qid = send_dsn(moat, "ENVID=late1",
                   [("slow@company.com", "ORCPT=rfc822;slow+40example.org"),
                    ("quiet@company.com", "NOTIFY=FAILURE")], "delayed")
    msg = notices(moat, 1, timeout=30)[0]
    assert msg["Subject"] == "Delayed Mail (still being retried)", msg["Subject"]
    per_msg, rcpts, orig = report(msg)
    assert per_msg["Original-Envelope-Id"] == "late1"
    # quiet asked for failures only: not in the warning.
    assert len(rcpts) == 1, [r.items() for r in rcpts]
    r = rcpts[0]
    assert r["Final-Recipient"] == "rfc822; slow@company.com", r.items()
    assert r["Original-Recipient"] == "rfc822; slow@example.org", r.items()
    assert r["Action"] == "delayed", r.items()
    assert r["Status"] == "4.2.0", r.items()
    assert r["Will-Retry-Until"], r.items()
    assert BUSY_TEXT in r["Diagnostic-Code"], r.items()
    assert orig.get_content_type() == "text/rfc822-headers"
    moat.wait_log(rf"id={qid}\b.*status=delay-warning-queued")
    # Several more retries: still one warning.
    n_deferred = len(re.findall(rf"id={qid}\b.*status=deferred", moat.log()))
    wait_until(lambda: len(re.findall(rf"id={qid}\b.*status=deferred",
                                                    moat.log())) >= n_deferred + 4,
               30, "four more deferrals")
    assert len(moat.maildir_new("sender")) == 1, "more than one delay warning"
    assert qid in moat.queue_ids()


def test_dsn_expiry_bounces(ctx):
    """maximal_queue_lifetime: what is left bounces (5.4.7) with the last reply."""
    down = downstream(ctx, busy=True)
    moat = start_moat(ctx, down, maximal_queue_lifetime="3s")
    qid = send_dsn(moat, "", [("late@company.com", "")], "expires")
    msg = notices(moat, 1, timeout=40)[0]
    _, rcpts, _ = report(msg)
    r = rcpts[0]
    assert r["Action"] == "failed" and r["Status"] == "5.4.7", r.items()
    assert r["Diagnostic-Code"].startswith("smtp; 450 4.2.0"), r.items()
    wait_until(lambda: qid not in moat.queue_ids(), 20, f"{qid} to leave the queue")


def test_dsn_parameters_refused(ctx):
    """Hostile DSN parameters over the wire: 501/555, and the session goes on."""
    down = downstream(ctx)
    moat = start_moat(ctx, down)
    s = moat.smtp()
    try:
        expect(s.ehlo("client.test"), 250, "EHLO")
        for line, code in [
                (f"MAIL FROM:<{SENDER}> ENVID=a+2b", 501),          # lower-case hex
                (f"MAIL FROM:<{SENDER}> ENVID=abc+", 501),          # "+" at the end
                (f"MAIL FROM:<{SENDER}> ENVID=a+0D+0AX", 501),      # decodes to CR LF
                (f"MAIL FROM:<{SENDER}> ENVID=" + "e" * 101, 501),  # over 100
                (f"MAIL FROM:<{SENDER}> RET=FULL RET=HDRS", 501),   # twice
                (f"MAIL FROM:<{SENDER}> RET=BODY", 501),
                (f"MAIL FROM:<{SENDER}> NOTIFY=NEVER", 555),        # RCPT's, on MAIL
                ]:
            code_got, text = s.docmd(line)
            assert code_got == code, f"{line!r}: {code_got} {text!r}"
        expect(s.docmd(f"MAIL FROM:<{SENDER}> RET=HDRS ENVID=ok"), 250, "MAIL")
        for line, code in [
                ("RCPT TO:<x@company.com> NOTIFY=NEVER,SUCCESS", 501),
                ("RCPT TO:<x@company.com> NOTIFY=SUCCESS,SUCCESS", 501),
                ("RCPT TO:<x@company.com> NOTIFY=SOMETIMES", 501),
                ("RCPT TO:<x@company.com> ORCPT=x400;x", 501),
                ("RCPT TO:<x@company.com> ORCPT=rfc822;" + "o" * 494, 501),
                ("RCPT TO:<x@company.com> NOTIFY=DELAY NOTIFY=DELAY", 501),
                ("RCPT TO:<x@company.com> ENVID=x", 555),
                ]:
            code_got, text = s.docmd(line)
            assert code_got == code, f"{line!r}: {code_got} {text!r}"
        expect(s.docmd("RCPT TO:<x@company.com> NOTIFY=delay ORCPT=rfc822;" + "o" * 493),
               250, "RCPT with an ORCPT of 500 bytes")
        expect(s.docmd("RSET"), 250, "RSET")
        expect(s.docmd("QUIT"), 221, "QUIT")
    finally:
        s.close()
