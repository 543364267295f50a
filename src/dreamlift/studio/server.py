"""The studio's web server: the page, its event stream, the job API, and the files of the studio's folder.

Python's own threaded HTTP server (docs/design.md says why): one thread per connection, which an event stream
holds for as long as its page is open. Requests are checked before they are served:

- Bound to a loopback address, the server answers only requests whose ``Host`` is a loopback name (a web page
  elsewhere cannot reach it by rebinding its own name to 127.0.0.1). Bound to any other address, every request
  needs the token printed at start: ``?token=…`` once (the page then keeps it in a cookie), the cookie, or an
  ``Authorization: token …`` header; without it the answer is 403.
- A POST must send JSON, and from a page of this server when the browser names one (``Origin``): a form on
  another site cannot queue or cancel jobs.
- Files are served from inside the studio's folder only (symlinks resolved); anything else is 404.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import mimetypes
import re
import sys
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from dreamlift.batch.commands import COMMANDS
from dreamlift.batch.status import is_folder_name
from dreamlift.config import is_inside
from dreamlift.errors import UsageError
from dreamlift.report import write_report
from dreamlift.studio.page import studio_page
from dreamlift.studio.studio import Studio

TOKEN_COOKIE = "dreamlift_studio_token"
HEARTBEAT_S = 15.0
"""Seconds between two comments on an idle event stream (so that a dead connection is noticed)."""
MAX_BODY_BYTES = 32 * 2**20
"""A POST's body at most (a picture for image-to-3D, base64)."""
ASSETS = {
    "studio.js": "dreamlift.studio",
    "studio.css": "dreamlift.studio",
    "report.css": "dreamlift.report",
    "model-viewer-umd.min.js": "dreamlift.report",
}
"""The page's scripts and stylesheets, each with the package that ships it (in its ``assets`` folder)."""
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")
PAGE_POLICY = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "connect-src 'self' data: blob:; worker-src 'self' blob:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"
)
"""The page's Content-Security-Policy: nothing from elsewhere, no inline script (the viewer compiles WebAssembly)."""
JOB_PATH = re.compile(r"^/api/jobs/([^/]+)/cancel$")


class StudioServer(ThreadingHTTPServer):
    """The server of one :class:`Studio`; ``token``: what a request must carry (None: bound to loopback, no
    token)."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], studio: Studio, token: str | None):
        super().__init__(address, StudioHandler)
        self.studio, self.token = studio, token

    def handle_error(self, request, client_address) -> None:
        """A browser that hung up (a page closed, a video that stopped loading) is no error worth a traceback."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class StudioHandler(BaseHTTPRequestHandler):
    server: StudioServer
    server_version = "dreamlift-studio"

    # --- checks -----------------------------------------------------------------------------------------------
    def log_message(self, format: str, *args) -> None:
        """Quiet: the terminal shows the studio's own lines, not one per request."""

    def allowed(self) -> bool:
        """Whether the request may be served (see the module's docstring); answers 403 when not."""
        token = self.server.token
        if token is None:
            host = urlsplit(f"//{self.headers.get('Host', '')}").hostname or ""
            if host in LOOPBACK_NAMES:
                return True
            self.send_error(HTTPStatus.FORBIDDEN, "this studio answers requests for localhost only")
            return False
        cookie = SimpleCookie()
        with contextlib.suppress(CookieError):  # a malformed Cookie header counts as none
            cookie.load(self.headers.get("Cookie", ""))
        given = [
            *parse_qs(urlsplit(self.path).query).get("token", []),
            cookie[TOKEN_COOKIE].value if TOKEN_COOKIE in cookie else "",
            self.headers.get("Authorization", "").removeprefix("token ").strip(),
        ]
        if any(hmac.compare_digest(value.encode(), token.encode()) for value in given if value):
            return True
        self.send_error(HTTPStatus.FORBIDDEN, "a token is needed: open the address the studio printed at start")
        return False

    def same_origin(self) -> bool:
        """Whether a POST comes as JSON from this server's own page (when the browser says where from)."""
        origin = self.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != self.headers.get("Host"):
            self.send_json({"error": "requests from other sites are refused"}, HTTPStatus.FORBIDDEN)
            return False
        if self.headers.get_content_type() != "application/json":
            self.send_json({"error": "send JSON"}, HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
            return False
        return True

    # --- answers ----------------------------------------------------------------------------------------------
    def send_bytes(
        self,
        data: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
        status: HTTPStatus = HTTPStatus.OK,
        cache: str = "no-cache",
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", cache)
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def send_json(self, data: object, status: HTTPStatus = HTTPStatus.OK) -> None:
        self.send_bytes(json.dumps(data).encode(), "application/json", status=status, cache="no-store")

    def redirect(self, location: str, cookie: str | None = None) -> None:
        self.send_response(HTTPStatus.SEE_OTHER)
        self.send_header("Location", location)
        if cookie is not None:
            self.send_header("Set-Cookie", f"{TOKEN_COOKIE}={cookie}; HttpOnly; SameSite=Strict; Path=/")
        self.send_header("Content-Length", "0")
        self.end_headers()

    # --- GET --------------------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        if not self.allowed():
            return
        url = urlsplit(self.path)
        path = unquote(url.path)
        if path == "/" and "token" in parse_qs(url.query):  # keep the token in a cookie, not in the address bar
            self.redirect("/", self.server.token)
        elif path == "/":
            page = studio_page().encode()
            self.send_bytes(page, "text/html; charset=utf-8", {"Content-Security-Policy": PAGE_POLICY})
        elif path.startswith("/assets/") and path.removeprefix("/assets/") in ASSETS:
            name = path.removeprefix("/assets/")
            data = (resources.files(ASSETS[name]) / "assets" / name).read_bytes()
            self.send_bytes(data, mimetypes.guess_type(name)[0] or "application/octet-stream")
        elif path == "/api/jobs":
            self.send_json(self.server.studio.snapshot)
        elif path == "/events":
            self.stream_events()
        elif path.startswith("/files/"):
            self.send_studio_file(path.removeprefix("/files/"))
        elif path == "/report" or path.startswith("/report/"):
            self.send_report(path.removeprefix("/report").strip("/"))
        else:
            self.send_error(HTTPStatus.NOT_FOUND)

    def send_studio_file(self, relative: str) -> None:
        """A file inside the studio's folder; 404 for anything else ('..', an absolute path, a symlink out)."""
        folder = self.server.studio.folder
        parts = relative.split("/")
        if "\0" in relative or "\\" in relative or any(part in ("", ".", "..") for part in parts):
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        path = folder.joinpath(*parts)
        if not (is_inside(path, folder) and path.is_file()):
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        self.send_bytes(path.read_bytes(), mimetypes.guess_type(path.name)[0] or "application/octet-stream")

    def send_report(self, job_id: str) -> None:
        """Write the report of one job (or, without an id, the gallery of them all) and send the browser to it."""
        studio = self.server.studio
        if job_id and (not is_folder_name(job_id) or job_id not in {view["id"] for view in studio.snapshot}):
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        try:
            index = write_report(studio.folder / job_id if job_id else studio.folder)
        except UsageError as err:
            self.send_error(HTTPStatus.CONFLICT, str(err))
            return
        self.redirect("/files/" + Path(index).relative_to(studio.folder).as_posix())

    def stream_events(self) -> None:
        """Server-sent events: the jobs (:meth:`Studio.wait_for_change`) at once and after every change."""
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        studio, version = self.server.studio, -1
        try:
            while not studio.stopped:
                new, snapshot = studio.wait_for_change(version, HEARTBEAT_S)
                message = f"data: {json.dumps(snapshot)}\n\n" if new != version else ": still here\n\n"
                version = new
                self.wfile.write(message.encode())
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):  # the page was closed
            return

    # --- POST -------------------------------------------------------------------------------------------------
    def do_POST(self) -> None:
        if not (self.allowed() and self.same_origin()):
            return
        length = self.headers.get("Content-Length", "")
        length = int(length) if length.isdigit() else 0
        if not 0 < length <= MAX_BODY_BYTES:
            self.send_json({"error": f"a request's body holds 1 byte to {MAX_BODY_BYTES // 2**20} MiB"}, 413)
            return
        try:
            body = json.loads(self.rfile.read(length))
        except ValueError:
            self.send_json({"error": "the body is not JSON"}, HTTPStatus.BAD_REQUEST)
            return
        path = urlsplit(self.path).path
        cancel = JOB_PATH.match(path)
        try:
            if path == "/api/jobs" and isinstance(body, dict):
                job = self.server.studio.submit(body)
                self.send_json({"id": job.id}, HTTPStatus.CREATED)
            elif cancel:
                self.server.studio.cancel(unquote(cancel.group(1)))
                self.send_json({"id": unquote(cancel.group(1)), "state": "cancelled"})
            else:
                self.send_error(HTTPStatus.NOT_FOUND)
        except UsageError as err:  # the line the command line would print
            kind = body.get("kind") if isinstance(body, dict) and body.get("kind") in COMMANDS else "text3d"
            self.send_json({"error": f"{kind}: error: {err}"}, HTTPStatus.BAD_REQUEST)
