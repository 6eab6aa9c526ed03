#!/usr/bin/env python3
"""The frontend, served on loopback with a /config.json that names the API, as the local
stand-in for CloudFront (which the local AWS cannot serve):

    python ci/frontend_server.py --api-base URL [--site DIR] [--port 5173] [--lifetime SECONDS]

build_site() builds the page as the frontend pipeline does, with the build commands of
ci/buildspec-frontend.yml up to its publishing (the version stamped into the footer,
version.json, config.json), into build/frontend/dist; the server serves that folder
(app/frontend, unstamped, without --site).

Binds 127.0.0.1 only, answers unknown paths with index.html (as the distribution
does), and exits by itself after --lifetime seconds. start() runs it in its own
process group; stop it by that process id. The port is fixed by default: the page's
origin, http://localhost:5173, is one the environment's CORS rules allow."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import urllib.request
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "app" / "frontend"
BUILD = ROOT / "build" / "frontend"
PORT = 5173


def source_version() -> str:
    """What CodePipeline hands CodeBuild as CODEBUILD_RESOLVED_SOURCE_VERSION for a repository
    source: the commit. Outside a git checkout, the buildspec's own default ("local")."""
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else ""


def build_site(api_base: str, version: str | None = None) -> Path:
    """app/frontend built by the frontend pipeline's own build commands (everything before its
    first aws call), in a copy of the source under build/frontend; returns its dist/."""
    import yaml

    phases = yaml.safe_load((ROOT / "ci" / "buildspec-frontend.yml").read_text(encoding="utf-8"))["phases"]
    commands = [command for phase in phases.values() for command in phase.get("commands", [])]
    publish = next(i for i, command in enumerate(commands) if command.lstrip().startswith(("aws ", "INVALIDATION=")))
    shutil.rmtree(BUILD, ignore_errors=True)
    shutil.copytree(SITE, BUILD / "app" / "frontend")
    version = source_version() if version is None else version
    environment = {**os.environ, "API_BASE": api_base}
    if version:
        environment["CODEBUILD_RESOLVED_SOURCE_VERSION"] = version
    done = subprocess.run(["bash", "-c", "set -eo pipefail\n" + "\n".join(commands[:publish])], cwd=BUILD, env=environment,
                          capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"frontend build (ci/buildspec-frontend.yml): exit {done.returncode}: {done.stderr.strip()[-300:]}")
    return BUILD / "dist"


class Handler(SimpleHTTPRequestHandler):
    config = b"{}"

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/config.json":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Length", str(len(self.config)))
            self.end_headers()
            self.wfile.write(self.config)
            return
        if path != "/" and not (Path(self.directory) / path.lstrip("/")).is_file():
            self.path = "/index.html"
        super().do_GET()

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


def serve(api_base: str, port: int, lifetime: float | None, site: Path = SITE) -> None:
    handler = type("ConfiguredHandler", (Handler,), {"config": json.dumps({"apiBase": api_base}).encode()})
    server = ThreadingHTTPServer(("127.0.0.1", port), partial(handler, directory=str(site)))
    if lifetime:
        threading.Timer(lifetime, server.shutdown).start()
    print(f"serving http://localhost:{port}/", flush=True)  # start() waits for this line: the port is ours
    server.serve_forever()


def start(api_base: str, port: int = PORT, lifetime: float | None = 3600, ready_timeout: float = 10,
          site: Path = SITE) -> subprocess.Popen:
    """Serve in a process of its own (own process group); returns once it answers.
    lifetime None: until stopped (the --keep of ci/local-deploy.sh, as its emulator)."""
    process = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--api-base", api_base, "--port", str(port),
                                "--lifetime", str(lifetime or 0), "--site", str(site)], start_new_session=True, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready, line = threading.Event(), []
    threading.Thread(target=lambda: (line.append(process.stdout.readline()), ready.set()), daemon=True).start()
    if not ready.wait(ready_timeout) or not line[0]:
        stop(process)
        why = process.stderr.read().strip().splitlines()[-1:] if process.poll() is not None else ["no answer"]
        raise RuntimeError(f"frontend server: did not start on 127.0.0.1:{port}: {' '.join(why)}")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/config.json", timeout=5) as answer:
        if json.load(answer).get("apiBase") != api_base:
            stop(process)
            raise RuntimeError(f"frontend server: 127.0.0.1:{port} answers with another configuration")
    return process


def stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api-base", required=True, help="the backend API's base URL, written to /config.json")
    parser.add_argument("--port", type=int, default=PORT)
    parser.add_argument("--lifetime", type=float, default=3600, help="seconds before it stops by itself (0: until stopped)")
    parser.add_argument("--site", type=Path, default=SITE, help="the folder to serve (default: app/frontend, unbuilt)")
    args = parser.parse_args(argv)
    try:
        serve(args.api_base, args.port, args.lifetime, args.site)
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        print(f"frontend server: 127.0.0.1:{args.port}: {exc.strerror}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
