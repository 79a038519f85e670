"""Local HTTP server for the fetch tests: files with Range support, fault
injection, and a mimic of the Hugging Face hub API and resolve URLs.

  python hub_server.py --data-root DIR --hub-root DIR --port-file F --log F [--token T]

Routes
  /data/<path>                  file under --data-root (Range: bytes=N- supported)
  /cut/<n>/data/<path>          without a Range header: full Content-Length, then only
                                n bytes and the connection is closed (an interrupted transfer)
  /corrupt/data/<path>          one byte flipped in the middle
  /norange/data/<path>          ignores Range (always 200 with the whole file)
  /api/models/<org>/<name>/revision/<rev>[?blobs=true]
                                hub listing: {"id", "sha", "siblings": [{"rfilename", ...}]}
  /<org>/<name>/resolve/<rev>/<path>
                                LFS-like files (.safetensors/.bin/.model/.pt): 302 to /cdn/...
                                with X-Linked-Etag (sha256) and X-Linked-Size; others 200
                                with ETag (git blob sha1)
  /cdn/<org>/<name>/<path>      the LFS content (repos named *badcdn* serve it corrupted)
Repos named gated-* (and every repo of a --gated-org, e.g. meta-llama for the
replica zoo of tests/zoo) require "Authorization: Bearer <--token>"; repos named
*nometa* list siblings without sizes or hashes (the client must HEAD).
Every request is logged as one JSON line: method, path, range, authorization.
"""
import argparse
import hashlib
import json
import os
import socket
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LFS_EXT = (".safetensors", ".bin", ".model", ".pt", ".pth")
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def git_blob_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "bm-test-hub/1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def _log(self):
        rec = {"method": self.command, "path": self.path, "range": self.headers.get("Range"),
               "authorization": self.headers.get("Authorization")}
        with self.server.log_lock:
            with open(self.server.log_path, "a") as f:
                f.write(json.dumps(rec) + "\n")

    def _send(self, status, body=b"", headers=None, content_type="application/octet-stream"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status, obj):
        self._send(status, json.dumps(obj).encode(), content_type="application/json")

    def _serve_bytes(self, data, mode="", extra=None):
        extra = dict(extra or {})
        extra["Accept-Ranges"] = "bytes"
        rng = self.headers.get("Range")
        if mode == "cut" and not rng:
            n = self.server.cut_bytes
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            for k, v in extra.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data[:n])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if rng and mode != "norange":
            spec = rng.strip()
            if not spec.startswith("bytes=") or "," in spec:
                return self._send(400, b"bad range")
            start_s, _, end_s = spec[6:].partition("-")
            start = int(start_s)
            end = int(end_s) if end_s else len(data) - 1
            if start >= len(data):
                return self._send(416, b"", {"Content-Range": "bytes */%d" % len(data)})
            end = min(end, len(data) - 1)
            extra["Content-Range"] = "bytes %d-%d/%d" % (start, end, len(data))
            return self._send(206, data[start:end + 1], extra)
        return self._send(200, data, extra)

    def _read_under(self, root, rel):
        rel = urllib.parse.unquote(rel)
        full = os.path.realpath(os.path.join(root, rel))
        if not full.startswith(os.path.realpath(root) + os.sep) or not os.path.isfile(full):
            return None
        with open(full, "rb") as f:
            return f.read()

    def _repo_dir(self, org, name):
        d = os.path.join(self.server.hub_root, org, name)
        return d if os.path.isdir(d) else None

    def _auth_ok(self, name, org=""):
        if not name.startswith("gated-") and org not in self.server.gated_orgs:
            return True
        return self.headers.get("Authorization") == "Bearer " + self.server.token

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        self._log()
        url = urllib.parse.urlsplit(self.path)
        parts = url.path.lstrip("/").split("/")
        query = urllib.parse.parse_qs(url.query)
        # ---- data files ----
        mode = ""
        if parts[0] == "cut":
            mode, self.server.cut_bytes, parts = "cut", int(parts[1]), parts[2:]
        elif parts[0] in ("corrupt", "norange"):
            mode, parts = parts[0], parts[1:]
        if parts[0] == "data":
            data = self._read_under(self.server.data_root, "/".join(parts[1:]))
            if data is None:
                return self._send(404, b"Not Found: " + url.path.encode())
            if mode == "corrupt":
                b = bytearray(data)
                b[len(b) // 2] ^= 0xFF
                data = bytes(b)
            return self._serve_bytes(data, mode)
        # ---- hub API ----
        if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "revision":
            org, name, rev = parts[2], parts[3], urllib.parse.unquote("/".join(parts[5:]))
            d = self._repo_dir(org, name)
            if d is None:
                return self._json(404, {"error": "Repository Not Found"})
            if not self._auth_ok(name, org):
                return self._json(401, {"error": "Access to model %s/%s is restricted." % (org, name)})
            if rev not in ("main", COMMIT):
                return self._json(404, {"error": "Invalid rev id: " + rev})
            siblings = []
            for root, _, files in os.walk(d):
                for fn in sorted(files):
                    rel = os.path.relpath(os.path.join(root, fn), d)
                    s = {"rfilename": rel}
                    if query.get("blobs") == ["true"] and "nometa" not in name:
                        with open(os.path.join(d, rel), "rb") as f:
                            data = f.read()
                        s["blobId"] = git_blob_sha1(data)
                        s["size"] = len(data)
                        if rel.endswith(LFS_EXT):
                            s["lfs"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
                                        "pointerSize": 134}
                    siblings.append(s)
            siblings.sort(key=lambda s: s["rfilename"])
            return self._json(200, {"id": org + "/" + name, "sha": COMMIT, "siblings": siblings})
        # ---- resolve ----
        if len(parts) >= 5 and parts[2] == "resolve":
            org, name, rev, rel = parts[0], parts[1], urllib.parse.unquote(parts[3]), "/".join(parts[4:])
            d = self._repo_dir(org, name)
            if d is None:
                return self._json(404, {"error": "Repository Not Found"})
            if not self._auth_ok(name, org):
                return self._json(401, {"error": "Access restricted"})
            if rev not in ("main", COMMIT):
                return self._json(404, {"error": "Revision Not Found"})
            data = self._read_under(d, rel)
            if data is None:
                return self._json(404, {"error": "Entry Not Found"})
            headers = {"X-Repo-Commit": COMMIT}
            if urllib.parse.unquote(rel).endswith(LFS_EXT):
                headers["X-Linked-Etag"] = '"%s"' % hashlib.sha256(data).hexdigest()
                headers["X-Linked-Size"] = str(len(data))
                headers["Location"] = "/cdn/%s/%s/%s" % (org, name, rel)
                return self._send(302, b"", headers)
            headers["ETag"] = '"%s"' % git_blob_sha1(data)
            return self._serve_bytes(data, "", headers)
        if parts[0] == "cdn" and len(parts) >= 4:
            org, name, rel = parts[1], parts[2], "/".join(parts[3:])
            d = self._repo_dir(org, name)
            data = self._read_under(d, rel) if d else None
            if data is None:
                return self._send(404, b"Not Found")
            if "badcdn" in name:
                b = bytearray(data)
                b[0] ^= 0xFF
                data = bytes(b)
            return self._serve_bytes(data)
        return self._send(404, b"Not Found: " + url.path.encode())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-root", required=True)
    ap.add_argument("--hub-root", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--token", default="secret-token-123")
    ap.add_argument("--gated-org", action="append", default=[], help="every repo of this org needs the token")
    a = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.data_root, srv.hub_root, srv.token = a.data_root, a.hub_root, a.token
    srv.gated_orgs = set(a.gated_org)
    srv.log_path, srv.log_lock, srv.cut_bytes = a.log, threading.Lock(), 0
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, a.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
