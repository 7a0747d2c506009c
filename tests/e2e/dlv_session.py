#!/usr/bin/env python3
"""Drives a real `dlv connect` the way a person does, through a port-forward, and checks each step.

  dlv_session.py --dlv DLV --addr 127.0.0.1:PORT --location main.go:LINE --var NAME --url URL

Sets a breakpoint at LOCATION, lets a request to URL hit it, reads variable NAME, clears the
breakpoint, continues, and checks the request then completes with the value read. One line per step
on stdout; exit 1 with the reason on the first step that fails. The dlv client is killed at the end,
never `exit`ed with a kill of the headless server, so the app keeps running for everyone.
"""
import argparse
import os
import re
import select
import subprocess
import sys
import threading
import time
import urllib.request


class Client:
    def __init__(self, argv):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, bufsize=0)
        self.buf = b""

    def expect(self, pattern, seconds):
        """Reads output until PATTERN matches; returns the match. Output before it is consumed."""
        rx = re.compile(pattern.encode())
        end = time.monotonic() + seconds
        while True:
            m = rx.search(self.buf)
            if m:
                self.buf = self.buf[m.end():]
                return m
            left = end - time.monotonic()
            if left <= 0 or self.p.poll() is not None:
                # A last read of whatever the process printed before it ended.
                r, _, _ = select.select([self.p.stdout], [], [], 0.2)
                if r:
                    self.buf += os.read(self.p.stdout.fileno(), 65536)
                    m = rx.search(self.buf)
                    if m:
                        self.buf = self.buf[m.end():]
                        return m
                tail = self.buf.decode(errors="replace")[-600:]
                state = "exited %s" % self.p.returncode if self.p.poll() is not None else "still running"
                raise RuntimeError("no %r within %ss (dlv client %s); output: %s" % (pattern, seconds, state, tail))
            r, _, _ = select.select([self.p.stdout], [], [], min(left, 0.5))
            if r:
                chunk = os.read(self.p.stdout.fileno(), 65536)
                if chunk:
                    self.buf += chunk

    def send(self, line):
        self.p.stdin.write((line + "\n").encode())
        self.p.stdin.flush()

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dlv", required=True)
    ap.add_argument("--addr", required=True)
    ap.add_argument("--location", required=True)
    ap.add_argument("--var", required=True)
    ap.add_argument("--url", required=True)
    ap.add_argument("--timeout", type=float, default=30)
    a = ap.parse_args()

    c = Client([a.dlv, "connect", a.addr])
    result = {}

    def request():
        try:
            with urllib.request.urlopen(a.url, timeout=a.timeout * 3) as r:
                result["body"] = r.read().decode()
        except Exception as e:  # noqa: BLE001 - reported as the step's failure
            result["error"] = str(e)

    step = "connect"
    try:
        c.expect(r"Type 'help' for list of commands\.", a.timeout)
        print("ok   - dlv connect %s: the debugger's prompt" % a.addr)
        step = "break"
        c.send("break " + a.location)
        c.expect(r"Breakpoint 1 set at .*\n", a.timeout)
        print("ok   - breakpoint set at %s" % a.location)
        step = "hit"
        c.send("continue")
        t = threading.Thread(target=request, daemon=True)
        t.start()
        m = c.expect(r"> \[Breakpoint 1\] (\S+)\(\) (\S+):(\d+)", a.timeout)
        print("ok   - a request to %s stopped at %s %s:%s" % (a.url, m.group(1).decode(), m.group(2).decode(), m.group(3).decode()))
        step = "print"
        c.send("print " + a.var)
        m = c.expect(r"(?:\n|\(dlv\) )(-?\d+)\r?\n", a.timeout)
        value = m.group(1).decode()
        print("ok   - print %s = %s" % (a.var, value))
        step = "continue"
        c.send("clearall")
        c.expect(r"Breakpoint 1 cleared", a.timeout)
        c.send("continue")
        t.join(a.timeout)
        if "body" not in result:
            raise RuntimeError("the request did not complete after continue: %s" % result.get("error", "still waiting"))
        if value not in result["body"]:
            raise RuntimeError("the reply %r does not carry the value read (%s)" % (result["body"], value))
        print("ok   - continued: the request completed with the value read (%s)" % result["body"].strip())
    except RuntimeError as e:
        print("FAIL - %s: %s" % (step, e))
        c.kill()
        return 1
    c.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
