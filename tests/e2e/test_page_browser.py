"""The web page in a real browser (Debian's headless Chromium, driven by Playwright)
against the local deploy of dev: a session, a file uploaded through its presigned URL
with the progress bar, the session's list. The page is served from http://localhost:5173,
an origin dev's CORS rules allow, so the API's and the media bucket's CORS preflights
pass in the browser; from another origin the browser is refused."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request

from conftest import ROOT

from support import ensure_applied, manifest, names

sys.path.insert(0, str(ROOT / "ci"))
import frontend_server  # noqa: E402

PLAYWRIGHT = ROOT / ".tools" / "playwright" / "bin" / "python"
SCREENSHOT = ROOT / "build" / "browser" / "upload.png"


def api_base(local_aws, boto) -> str:
    stack = boto("cloudformation").describe_stacks(StackName=names()["backend"])["Stacks"][0]
    api_id = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}["HttpApiId"]
    return f"{local_aws['AWS_ENDPOINT_URL']}/_aws/execute-api/{api_id}"


def browse(*args) -> tuple[int, dict]:
    result = subprocess.run([str(PLAYWRIGHT), str(ROOT / "ci" / "browser_check.py"), *args],
                            capture_output=True, text=True, cwd=ROOT, timeout=180)
    lines = result.stdout.strip().splitlines()
    assert lines, result.stderr[-2000:]
    return result.returncode, json.loads(lines[-1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_upload_through_the_page_in_a_real_browser(local_aws, boto):
    ensure_applied(local_aws)
    SCREENSHOT.unlink(missing_ok=True)
    api = api_base(local_aws, boto)
    site = frontend_server.build_site(api)   # as the frontend pipeline builds it, as ci/local-deploy.sh serves it
    server = frontend_server.start(api, lifetime=300, site=site)
    try:
        status, page = browse("--url", "http://localhost:5173/", "--screenshot", str(SCREENSHOT))
    finally:
        frontend_server.stop(server)
    assert status == 0, page
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    assert page["version"] == commit   # the page's footer shows the real version, not __VERSION__
    assert json.loads((site / "version.json").read_text())["version"] == commit
    assert json.loads((site / "config.json").read_text()) == {"apiBase": api}
    assert page["progress"] == 100 and page["status"] == "Uploaded browser-photo.jpg."
    key = f"sessions/{page['session']}/browser-photo.jpg"
    assert page["uploads"] == [key]
    media = manifest()["physical_names"]["buckets"]["media"]
    stored = boto("s3").get_object(Bucket=media, Key=key)
    assert stored["ContentLength"] == page["size"] and stored["ContentType"] == "image/jpeg"
    assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_page_on_another_origin_is_refused_by_the_cors_rules(local_aws, boto):
    ensure_applied(local_aws)
    port = free_port()
    server = frontend_server.start(api_base(local_aws, boto), port=port, lifetime=300)
    try:
        status, page = browse("--url", f"http://localhost:{port}/", "--expect-refused")
    finally:
        frontend_server.stop(server)
    assert status == 0, page
    assert any("blocked by CORS policy" in line for line in page["console"]), page


def preflight(url: str, origin: str, method: str) -> tuple[int, str]:
    request = urllib.request.Request(url, method="OPTIONS", headers={
        "Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": "content-type"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers.get("Access-Control-Allow-Origin", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Access-Control-Allow-Origin", "")


def test_the_media_bucket_and_the_api_answer_preflights_from_their_own_rules(local_aws, boto):
    ensure_applied(local_aws)
    bucket_url = f"{local_aws['AWS_ENDPOINT_URL']}/{manifest()['physical_names']['buckets']['media']}/sessions/x/photo.jpg"
    api_url = f"{api_base(local_aws, boto)}/sessions"
    assert preflight(bucket_url, "http://localhost:5173", "PUT") == (200, "http://localhost:5173")
    assert preflight(bucket_url, "http://localhost:5999", "PUT")[0] == 403
    assert preflight(bucket_url, "http://localhost:5173", "DELETE")[0] == 403  # the rule allows PUT and GET only
    assert preflight(api_url, "http://localhost:5173", "POST") == (204, "http://localhost:5173")
    assert preflight(api_url, "http://localhost:5999", "POST")[0] == 403
