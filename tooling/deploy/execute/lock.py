"""One deploy per environment at a time: a lock that lives in AWS, so that two
machines see it. It is an object in the storage stack's backend artifacts bucket
(deploy-py/lock/<env>.json), taken with an S3 conditional write (If-None-Match: *),
renewed and released with If-Match on its ETag, so no two runs can both hold it.

A holder renews it every TTL/3; a lock not renewed for TTL seconds (its run was
killed) is taken over, and the taker says whose it was. A holder on this machine
whose process is gone is taken over at once. Before the bucket exists (the first
deploy of an environment) there is nothing to lock in; the lock is taken as soon as
the storage stack has created the bucket."""
from __future__ import annotations

import getpass
import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from ...aws import s3
from ...errors import UserError
from .. import interrupt
from ..workspace import Workspace

TTL_SECONDS = float(os.environ.get("DEPLOY_LOCK_TTL", "120"))
WAIT_SECONDS = float(os.environ.get("DEPLOY_LOCK_WAIT", "1800"))
POLL_SECONDS = float(os.environ.get("DEPLOY_LOCK_POLL", "2"))
BUSY = 4  # the exit status of "busy, try again"


@dataclass
class Holder:
    who: str
    host: str
    pid: int
    command: str
    since: str  # ISO time, UTC
    renewed: float  # epoch seconds of its last renewal
    token: str

    @classmethod
    def parse(cls, body: bytes) -> "Holder | None":
        try:
            data = json.loads(body)
            return cls(str(data["who"]), str(data["host"]), int(data["pid"]), str(data["command"]), str(data["since"]),
                       float(data["renewed"]), str(data["token"]))
        except (ValueError, KeyError, TypeError):
            return None

    def describe(self) -> str:
        return f"{self.command} by {self.who}@{self.host} (pid {self.pid}) since {self.since}"

    def expired(self, now: float) -> bool:
        return now - self.renewed > TTL_SECONDS

    def dead_here(self) -> bool:
        """On this machine, and its process is gone."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False


def location(ws: Workspace) -> tuple[str, str, str]:
    return ws.region, ws.manifest["physical_names"]["buckets"]["backend_artifacts"], f"deploy-py/lock/{ws.env}.json"


def peek(ws: Workspace) -> Holder | None:
    """Who holds the environment's lock now (None: nobody, or no bucket yet). For plan,
    check and status, which take no lock."""
    region, bucket, key = location(ws)
    if not s3.bucket_exists(region, bucket):
        return None
    found = s3.read_object(region, bucket, key)
    holder = Holder.parse(found[0]) if found else None
    return holder if holder and not holder.expired(time.time()) else None


class Lock:
    def __init__(self, ws: Workspace, command: str, log):
        self.region, self.bucket, self.key = location(ws)
        self.command, self.log = command, log
        self.token = uuid.uuid4().hex
        self.etag: str | None = None
        self.since = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = False

    @property
    def held(self) -> bool:
        return self.etag is not None

    def _body(self) -> bytes:
        return json.dumps({"who": getpass.getuser(), "host": socket.gethostname(), "pid": os.getpid(), "command": self.command,
                           "since": self.since, "renewed": time.time(), "token": self.token}).encode()

    def acquire(self, wait: bool) -> bool:
        """Take the lock: True when held, False when there is no bucket yet (first deploy).
        Another holder: wait for it (bounded, a line per change of holder) or, without
        `wait`, refuse with the busy status."""
        if not s3.bucket_exists(self.region, self.bucket):
            return False
        deadline = time.monotonic() + WAIT_SECONDS
        shown = None
        while True:
            self.etag = s3.put_if_absent(self.region, self.bucket, self.key, self._body())
            if self.etag:
                break
            found = s3.read_object(self.region, self.bucket, self.key)
            if found is None:
                continue  # released between the two calls
            body, etag = found
            holder = Holder.parse(body)
            if holder is None or holder.expired(time.time()) or holder.dead_here():
                why = ("is unreadable" if holder is None else
                       f"was not renewed for {time.time() - holder.renewed:.0f}s (its run was killed or lost its connection)"
                       if holder.expired(time.time()) else "belongs to a process of this machine that is gone")
                self.etag = s3.put_if_match(self.region, self.bucket, self.key, self._body(), etag)
                if self.etag:
                    self.log(f"lock: took over the lock of {self.key.rsplit('/', 1)[-1][:-5]}: "
                             f"{holder.describe() if holder else 'an unknown holder'} {why}")
                    break
                continue  # someone else took it over first: look again
            if not wait:
                raise UserError(f"busy: {holder.describe()} holds this environment's deploy lock "
                                f"(s3://{self.bucket}/{self.key}); try again when it ends, or run without --no-wait to wait",
                                status=BUSY)
            if time.monotonic() > deadline:
                raise UserError(f"busy: {holder.describe()} still holds this environment's deploy lock after "
                                f"{WAIT_SECONDS:.0f}s of waiting; try again later", status=BUSY)
            if shown != holder.token:
                self.log(f"lock: waiting for {holder.describe()} (up to {WAIT_SECONDS:.0f}s; --no-wait refuses instead)")
                shown = holder.token
            if interrupt.sleep(POLL_SECONDS):
                raise interrupt.Stopped("interrupted while waiting for the deploy lock")
        self._thread = threading.Thread(target=self._renew, daemon=True)
        self._thread.start()
        return True

    def _renew(self) -> None:
        while not self._stop.wait(TTL_SECONDS / 3):
            try:
                etag = s3.put_if_match(self.region, self.bucket, self.key, self._body(), self.etag)
            except Exception:  # noqa: BLE001 - a failed renewal is retried at the next round
                continue
            if etag is None:
                self.lost = True
                self.log("lock: LOST: another run took this environment's lock over (this run was not renewing it in time)")
                return
            self.etag = etag

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=interrupt.GRACE_SECONDS)  # a renewal in flight changes the ETag
        if self.etag and not self.lost:
            try:
                s3.delete_if_match(self.region, self.bucket, self.key, self.etag)
            except Exception:  # noqa: BLE001 - it expires on its own
                self.log(f"lock: could not be released; it expires within {TTL_SECONDS:.0f}s")
        self.etag = None
