"""A local SageMaker with the Studio APIs this product uses, on moto's server.

moto 5.2.1 implements SageMaker domains only in part. ``install()`` puts this
module's request handler in front of moto's SageMaker handler, so that a
moto server started afterwards in this process serves:

- Create/Describe/List/DeleteStudioLifecycleConfig;
- Create/Describe/List/Update/DeleteDomain, UserProfile and Space;
- Create/Describe/List/DeleteApp, which run lifecycle scripts through the
  hook set with ``set_app_start_hook``;
- AddTags, ListTags and DeleteTags on those resources (moto keeps the tags
  of other resources).

Requests are checked against botocore's service model, and errors come back
with the codes of the SageMaker API reference, which boto3 raises as its
modeled exceptions. Every other SageMaker operation stays moto's.

The test controls (call log, injected errors, domains held in ``Updating``,
the update delay) are Python functions here. The server also serves them as
HTTP paths under ``/_studio_bootstrap``, which ``ControlClient`` calls.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import moto.sagemaker.urls as sagemaker_urls
from moto.core.responses import ActionResult
from moto.core.utils import camelcase_to_underscores
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.sagemaker.responses import SageMakerResponse

from ._studio_app_operations import StudioStore, store_for
from ._studio_apps import AppStart, AppStartHook, LifecycleScript, set_app_start_hook
from ._studio_control import (
    DEFAULT_UPDATE_DELAY,
    STATE_LOCK,
    CallLog,
    InjectedError,
    call_log,
    clear_injected_errors,
    hold_domain_updating,
    inject_error,
    pending_injected_errors,
    record_call,
    release_domain_updating,
    reset,
    reset_call_log,
    set_update_delay,
    take_injected_error,
    update_delay,
)
from ._studio_errors import StudioApiError
from ._studio_http import (
    CONTROL_PREFIX,
    ControlClient,
    ControlRequestError,
    control_app,
)
from ._studio_validation import validate_request

__all__ = [
    "CONTROL_PREFIX",
    "DEFAULT_UPDATE_DELAY",
    "AppStart",
    "AppStartHook",
    "CallLog",
    "ControlClient",
    "ControlRequestError",
    "InjectedError",
    "LifecycleScript",
    "StudioSageMakerResponse",
    "call_log",
    "clear_injected_errors",
    "hold_domain_updating",
    "inject_error",
    "install",
    "pending_injected_errors",
    "release_domain_updating",
    "reset",
    "reset_call_log",
    "set_app_start_hook",
    "set_update_delay",
    "update_delay",
]

logger = logging.getLogger(__name__)

# The operations this module serves in place of moto.
STUDIO_OPERATIONS = frozenset(
    {
        "CreateStudioLifecycleConfig",
        "DescribeStudioLifecycleConfig",
        "ListStudioLifecycleConfigs",
        "DeleteStudioLifecycleConfig",
        "CreateDomain",
        "DescribeDomain",
        "ListDomains",
        "UpdateDomain",
        "DeleteDomain",
        "CreateUserProfile",
        "DescribeUserProfile",
        "ListUserProfiles",
        "UpdateUserProfile",
        "DeleteUserProfile",
        "CreateSpace",
        "DescribeSpace",
        "ListSpaces",
        "UpdateSpace",
        "DeleteSpace",
        "CreateApp",
        "DescribeApp",
        "ListApps",
        "DeleteApp",
    }
)

# Served here for the ARNs of the resources above, by moto for the others.
TAG_OPERATIONS = frozenset({"AddTags", "ListTags", "DeleteTags"})

# The path under which moto's SageMaker url module routes every request.
_SAGEMAKER_PATH = "{0}/$"

_JSON_CONTENT_TYPE = "application/x-amz-json-1.1"

_install_lock = threading.Lock()


class StudioSageMakerResponse(SageMakerResponse):
    """moto's SageMaker request handler with the Studio operations added.

    Each request is counted in the call log and may return an injected
    error before anything else happens.
    """

    def call_action(self) -> Any:
        operation = self._get_action()
        if not operation:
            return super().call_action()
        record_call(operation)

        injected = take_injected_error(operation)
        if injected is not None:
            logger.info("returning injected %s for %s", injected.code, operation)
            return self._error_response(
                injected.code, injected.message, injected.http_status
            )

        with STATE_LOCK:
            if not self._served_here(operation):
                return super().call_action()
            try:
                validate_request(operation, self.params)
                handler = getattr(self._store(), camelcase_to_underscores(operation))
                result = handler(self.params)
            except StudioApiError as exc:
                logger.debug("%s failed with %s: %s", operation, exc.code, exc.message)
                return self._error_response(exc.code, exc.message, exc.http_status)
            status, headers, body = self.serialized(ActionResult(result))
        headers, body = self._enrich_response(headers, body)
        return status, headers, body

    def _served_here(self, operation: str) -> bool:
        if operation in STUDIO_OPERATIONS:
            return True
        if operation in TAG_OPERATIONS:
            return self._store().owns_arn(str(self.params.get("ResourceArn", "")))
        return False

    def _store(self) -> StudioStore:
        return store_for(self.sagemaker_backend)

    def _error_response(self, code: str, message: str, status: int) -> Any:
        # The body and header botocore's JSON protocol parser reads the error
        # code and message from.
        body = json.dumps({"__type": code, "Message": message})
        headers = dict(self.response_headers)
        headers["Content-Type"] = _JSON_CONTENT_TYPE
        headers["X-Amzn-Errortype"] = code
        headers, body = self._enrich_response(headers, body)
        return status, headers, body


def install() -> None:
    """Serve the Studio operations and control paths from moto servers.

    The Studio operations reach a moto server of this process only if its
    first SageMaker request comes after this call, so call it before
    starting the server. The control paths reach every moto server of this
    process. Calling it again changes nothing.
    """
    with _install_lock:
        sagemaker_urls.url_paths[_SAGEMAKER_PATH] = StudioSageMakerResponse.dispatch
        dispatch = DomainDispatcherApplication.__call__
        if getattr(dispatch, "serves_studio_controls", False):
            return

        def call_with_controls(
            self: DomainDispatcherApplication,
            environ: dict[str, Any],
            start_response: Any,
        ) -> Any:
            if environ.get("PATH_INFO", "").startswith(CONTROL_PREFIX + "/"):
                return control_app(environ, start_response)
            return dispatch(self, environ, start_response)

        call_with_controls.serves_studio_controls = True  # type: ignore[attr-defined]
        DomainDispatcherApplication.__call__ = call_with_controls  # type: ignore[method-assign]
