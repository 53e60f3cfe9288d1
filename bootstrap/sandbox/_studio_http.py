"""HTTP access to the test controls, for programs in other processes.

The moto server serves these paths under ``CONTROL_PREFIX``. Request and
response bodies are JSON.

- ``GET /calls``: the call log; ``DELETE /calls`` resets it.
- ``GET /errors``: injected errors not yet returned; ``POST /errors`` with
  ``{"operation", "code", "message", "times", "http_status"}`` injects one
  (only ``operation`` and ``code`` are required); ``DELETE /errors`` clears
  them.
- ``PUT /held-domains/DOMAIN_ID`` keeps a domain ``Updating``;
  ``DELETE /held-domains/DOMAIN_ID`` releases it.
- ``GET /update-delay``; ``PUT /update-delay`` with ``{"seconds": 0.3}`` sets
  it and returns the new and previous values.
- ``POST /reset`` deletes all SageMaker resources and clears the controls.

Invalid requests get status 400 with ``{"error": "..."}``.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Request, Response

from . import _studio_control as control
from .errors import SandboxError

logger = logging.getLogger(__name__)

CONTROL_PREFIX = "/_studio_bootstrap"

# No proxy from the environment: control requests go straight to loopback.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

Document = dict[str, Any]


def control_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
    """Serve one control request as a WSGI application."""
    request = Request(environ)
    try:
        status, document = _route(request)
    except (ValueError, TypeError, KeyError) as exc:
        logger.info(
            "rejected control request %s %s: %s", request.method, request.path, exc
        )
        status, document = 400, {"error": f"invalid control request: {exc}"}
    body = json.dumps(document)
    response = Response(body, status=status, mimetype="application/json")
    return response(environ, start_response)


def _route(request: Request) -> tuple[int, Document]:
    path = request.path.removeprefix(CONTROL_PREFIX)
    method = request.method
    if path == "/calls" and method == "GET":
        return 200, control.call_log().to_json()
    if path == "/calls" and method == "DELETE":
        control.reset_call_log()
        return 200, {}
    if path == "/errors":
        return _route_errors(request)
    if path.startswith("/held-domains/") and method in ("PUT", "DELETE"):
        domain_id = path.removeprefix("/held-domains/")
        if method == "PUT":
            control.hold_domain_updating(domain_id)
        else:
            control.release_domain_updating(domain_id)
        return 200, {"domain_id": domain_id, "held": method == "PUT"}
    if path == "/update-delay" and method == "GET":
        return 200, {"seconds": control.update_delay()}
    if path == "/update-delay" and method == "PUT":
        previous = control.set_update_delay(float(_json(request)["seconds"]))
        return 200, {"seconds": control.update_delay(), "previous_seconds": previous}
    if path == "/reset" and method == "POST":
        control.reset()
        return 200, {}
    return 404, {"error": f"no control at {method} {request.path}"}


def _route_errors(request: Request) -> tuple[int, Document]:
    if request.method == "GET":
        errors = [error.to_json() for error in control.pending_injected_errors()]
        return 200, {"errors": errors}
    if request.method == "DELETE":
        control.clear_injected_errors()
        return 200, {}
    if request.method == "POST":
        document = _json(request)
        options = {
            key: document[key]
            for key in ("message", "times", "http_status")
            if key in document
        }
        control.inject_error(document["operation"], document["code"], **options)
        return 201, {}
    return 405, {"error": f"{request.method} is not allowed on /errors"}


def _json(request: Request) -> Document:
    document = request.get_json(force=True, silent=True)
    if not isinstance(document, dict):
        raise ValueError("the body must be a JSON object")
    return document


class ControlRequestError(SandboxError):
    """Raised when the server returns an error status for a control request."""

    def __init__(self, method: str, path: str, status: int, detail: str) -> None:
        super().__init__(
            f"control request {method} {CONTROL_PREFIX}{path} failed with HTTP "
            f"{status}: {detail}"
        )
        self.status = status


class ControlClient:
    """Client of the control paths of a local SageMaker on a loopback address."""

    def __init__(self, endpoint_url: str, timeout: float = 10.0) -> None:
        host = urllib.parse.urlsplit(endpoint_url).hostname or ""
        if not _is_loopback(host):
            raise ValueError(
                f"endpoint {endpoint_url!r} is not on a loopback address; the "
                "control client only talks to a local moto server"
            )
        self._base = endpoint_url.rstrip("/") + CONTROL_PREFIX
        self._timeout = timeout

    def call_log(self) -> control.CallLog:
        return control.CallLog.from_json(self._request("GET", "/calls"))

    def reset_call_log(self) -> None:
        self._request("DELETE", "/calls")

    def inject_error(
        self,
        operation: str,
        code: str,
        message: str = "Error injected by the local SageMaker.",
        times: int = 1,
        http_status: int = 400,
    ) -> None:
        self._request(
            "POST",
            "/errors",
            {
                "operation": operation,
                "code": code,
                "message": message,
                "times": times,
                "http_status": http_status,
            },
        )

    def clear_injected_errors(self) -> None:
        self._request("DELETE", "/errors")

    def hold_domain_updating(self, domain_id: str) -> None:
        self._request("PUT", f"/held-domains/{urllib.parse.quote(domain_id)}")

    def release_domain_updating(self, domain_id: str) -> None:
        self._request("DELETE", f"/held-domains/{urllib.parse.quote(domain_id)}")

    def set_update_delay(self, seconds: float) -> float:
        """Set the update delay of the server; return the previous value."""
        document = self._request("PUT", "/update-delay", {"seconds": seconds})
        return float(document["previous_seconds"])

    def reset(self) -> None:
        self._request("POST", "/reset")

    def _request(
        self, method: str, path: str, document: Document | None = None
    ) -> Document:
        data = None if document is None else json.dumps(document).encode()
        request = urllib.request.Request(
            self._base + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with _OPENER.open(request, timeout=self._timeout) as response:
                result = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            with exc:
                detail = exc.read().decode(errors="replace")
            raise ControlRequestError(method, path, exc.code, detail) from exc
        if not isinstance(result, dict):
            raise ValueError(f"unexpected control response: {result!r}")
        return result


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
