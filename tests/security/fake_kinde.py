"""A local stand-in for Kinde on 127.0.0.1: its key set (JWKS) and its OAuth token endpoint.

A plain threaded HTTP server, so it answers whatever event loop the client runs on. Tests
mint their own RSA keys and tokens with joserfc; the server only publishes the public halves.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey

AUDIENCE = "https://api.sniper.test"
CLIENT_ID = "sniper-client"
CLIENT_SECRET = "sniper-client-secret-0123456789"


@functools.cache
def _generated(kid: str, variant: int) -> dict[str, Any]:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"}).as_dict(private=True)


def rsa_key(kid: str, variant: int = 0) -> RSAKey:
    """An RSA signing key with this id; generated once per (kid, variant) in a test run (RSA key
    generation is slow). Another `variant` is a different key under the same id."""
    return RSAKey.import_key(_generated(kid, variant))


def sign(key: RSAKey, claims: dict[str, Any], **header: Any) -> str:
    return jwt.encode({"alg": "RS256", "kid": key.kid, **header}, claims, key, algorithms=["RS256"])


@dataclass
class PendingCode:
    challenge: str
    method: str
    redirect_uri: str
    subject: str


@dataclass
class FakeKinde:
    keys: list[RSAKey] = field(default_factory=lambda: [rsa_key("kinde-1")])
    jwks_requests: int = 0
    token_requests: list[dict[str, str]] = field(default_factory=list)
    codes: dict[str, PendingCode] = field(default_factory=dict)
    jwks_status: int = 200
    _server: ThreadingHTTPServer | None = None

    @property
    def issuer(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeKinde:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                if urlsplit(self.path).path == "/.well-known/jwks.json":
                    fake.jwks_requests += 1
                    if fake.jwks_status != 200:
                        self._send(fake.jwks_status, {"error": "down"})
                        return
                    self._send(200, {"keys": [k.as_dict(private=False) for k in fake.keys]})
                else:
                    self._send(404, {"error": "not found"})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if urlsplit(self.path).path != "/oauth2/token":
                    self._send(404, {"error": "not found"})
                    return
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    cid, _, csecret = base64.b64decode(auth[6:]).decode().partition(":")
                    form.setdefault("client_id", cid)
                    form.setdefault("client_secret", csecret)
                fake.token_requests.append(form)
                status, body = fake.exchange(form)
                self._send(status, body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def authorize(self, login_url: str, subject: str = "kp_user_1") -> tuple[str, str]:
        """What Kinde does when the user signs in at the login URL: (code, state) for the callback."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(login_url).query).items()}
        assert query["response_type"] == "code" and query["client_id"] == CLIENT_ID
        code = secrets.token_urlsafe(16)
        self.codes[code] = PendingCode(query["code_challenge"], query["code_challenge_method"],
                                       query["redirect_uri"], subject)
        return code, query["state"]

    def exchange(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        if (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
            return 401, {"error": "invalid_client"}
        pending = self.codes.pop(form.get("code", ""), None)
        if pending is None or pending.redirect_uri != form.get("redirect_uri"):
            return 400, {"error": "invalid_grant"}
        verifier = form.get("code_verifier", "")
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if pending.method != "S256" or digest != pending.challenge:
            return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
        now = int(time.time())
        access = sign(self.keys[0], {"iss": self.issuer, "aud": [AUDIENCE], "sub": pending.subject,
                                     "iat": now, "exp": now + 3600, "email": f"{pending.subject}@example.test"})
        return 200, {"access_token": access, "token_type": "bearer", "expires_in": 3600,
                     "refresh_token": secrets.token_urlsafe(16), "scope": "openid profile email"}
