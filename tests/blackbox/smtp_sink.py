"""A real SMTP server for tests (aiosmtpd, from Debian's python3-aiosmtpd):
STARTTLS required, AUTH PLAIN/LOGIN required, every accepted message saved
as N.eml (+ N.json with the envelope) in a folder.

    smtp_sink.py DIR CERT KEY USER PASSWORD [dedupe] [flaky=P] [delay=S]

With "dedupe" it behaves like a mail provider that honours idempotency: a
message whose Message-ID it has already accepted is acknowledged again but
stored only once; each such repeat is appended to DIR/repeats.log. With
"flaky=P" a fraction P of the messages (at random) is refused with 451, a
temporary failure the sender must retry; each is counted in
DIR/failures.log. With "delay=S" every message takes S seconds (a slow
provider).

Prints "port N" when it listens. Recipients starting with "reject" get 550, "relay" 554 Relay access denied,
"later" get 451 (a temporary failure); a sender (MAIL FROM) starting with
"reject" gets 553 (a server that will not send for that address), one
starting with "big" 552 (as a message over the size limit does). Without
AUTH, MAIL FROM gets aiosmtpd's 530 "authentication required"."""
import asyncio
import json
import os
import random
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

out, cert, key, user, password = sys.argv[1:6]
dedupe = "dedupe" in sys.argv[6:]
flaky = delay = 0.0
for arg in sys.argv[6:]:
    if arg.startswith("flaky="):
        flaky = float(arg[len("flaky="):])
    if arg.startswith("delay="):
        delay = float(arg[len("delay="):])
seen_ids = set()


class Handler:
    def __init__(self):
        self.n = 0

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if address.split("@")[0].startswith("reject"):
            return "553 5.7.1 <%s>: Sender address rejected: not owned by user shop" % address
        if address.split("@")[0].startswith("big"):  # as for a SIZE over the limit
            return "552 5.3.4 Message size exceeds fixed maximum message size"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0]
        if local.startswith("reject"):
            return "550 5.1.1 no such mailbox"
        if local.startswith("relay"):  # a server that will not relay for an unauthenticated client
            return "554 5.7.1 <%s>: Relay access denied" % address
        if local.startswith("later"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if delay:
            await asyncio.sleep(delay)
        if flaky and random.random() < flaky:
            with open(os.path.join(out, "failures.log"), "a") as f:
                f.write("451\n")
            return "451 4.3.0 temporary failure, try again"
        if dedupe:
            mid = None
            for line in envelope.original_content.split(b"\r\n"):
                if not line:
                    break
                if line.lower().startswith(b"message-id:"):
                    mid = line.split(b":", 1)[1].strip().decode()
            if mid in seen_ids:
                with open(os.path.join(out, "repeats.log"), "a") as f:
                    f.write(mid + "\n")
                return "250 2.0.0 already have it"
            seen_ids.add(mid)
        self.n += 1
        base = os.path.join(out, "%06d" % self.n)
        # Each file under a temporary name renamed into place, the envelope first:
        # a reader sees whole files only, and N.json whenever it sees N.eml.
        with open(base + ".json.tmp", "w") as f:
            json.dump({"from": envelope.mail_from, "to": envelope.rcpt_tos,
                       "tls": session.ssl is not None,
                       "auth": session.auth_data.login.decode()
                       if isinstance(session.auth_data, LoginPassword) else None}, f)
        os.rename(base + ".json.tmp", base + ".json")
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content)
        os.rename(base + ".eml.tmp", base + ".eml")
        return "250 2.0.0 queued"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user and \
        auth_data.password.decode() == password
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


import socket  # noqa: E402

probe = socket.socket()
probe.bind(("127.0.0.1", 0))
port = probe.getsockname()[1]
probe.close()
ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)
h = Handler()
c = Controller(h, hostname="127.0.0.1", port=port, tls_context=ctx, require_starttls=True,
               authenticator=authenticator, auth_required=True, auth_require_tls=True,
               decode_data=False)
c.start()
print("port", port, flush=True)
try:
    sys.stdin.read()  # runs until the test closes our stdin
finally:
    c.stop()
