"""App starts: the hook that runs lifecycle scripts and the resulting status."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from ._studio_control import STATE_LOCK
from ._studio_records import App

logger = logging.getLogger(__name__)


class LifecycleScript(NamedTuple):
    """One lifecycle configuration to run: its ARN and decoded script."""

    arn: str
    script: bytes


@dataclass(frozen=True)
class AppStart:
    """An app that CreateApp starts, with its lifecycle scripts in run order.

    ``user_profile_name`` is set for apps of a user profile (Studio Classic).
    ``space_name`` is set for apps in a space. An app in a private space has
    both, because the space's owner is its user.
    """

    domain_id: str
    user_profile_name: str | None
    space_name: str | None
    app_type: str
    app_name: str
    scripts: tuple[LifecycleScript, ...]


# Returns one exit status per script, in run order. It may stop after the
# first non-zero status and return fewer statuses.
AppStartHook = Callable[[AppStart], Sequence[int]]

_hook: AppStartHook | None = None


def set_app_start_hook(hook: AppStartHook | None) -> AppStartHook | None:
    """Register the callable that runs lifecycle scripts; return the old one.

    With no hook, apps reach ``InService`` without running anything.
    """
    global _hook
    with STATE_LOCK:
        previous, _hook = _hook, hook
    return previous


def launch(app: App, start: AppStart, failure_reason: str | None) -> None:
    """Finish starting ``app`` in a thread, as Studio does after CreateApp returns.

    The app stays ``Pending`` until the hook returns, then becomes
    ``InService`` or ``Failed``. ``failure_reason`` fails it without
    calling the hook. The hook registered now is the one called, even if
    another is registered before the thread runs.
    """
    with STATE_LOCK:
        hook = _hook
    thread = threading.Thread(
        target=_run_start,
        args=(app, start, hook, failure_reason),
        name=f"studio-app-{start.domain_id}-{start.app_name}",
        daemon=True,
    )
    thread.start()


def _run_start(
    app: App,
    start: AppStart,
    hook: AppStartHook | None,
    failure_reason: str | None,
) -> None:
    if failure_reason is None and hook is not None:
        failure_reason = _call_hook(hook, start)

    with STATE_LOCK:
        # A DeleteApp during the start wins over the start's result.
        if app.status != "Pending":
            return
        if failure_reason is None:
            app.status = "InService"
        else:
            app.status = "Failed"
            app.failure_reason = failure_reason
            logger.info("app %s failed to start: %s", app.arn, failure_reason)


def _call_hook(hook: AppStartHook, start: AppStart) -> str | None:
    """Run ``hook`` and return the reason the app fails, or None."""
    try:
        statuses = list(hook(start))
    except Exception as exc:
        # The hook belongs to the sandbox; its failure must fail this app
        # start, not the server thread.
        logger.warning("app start hook failed for %s", start.app_name, exc_info=True)
        return f"The app start hook raised {type(exc).__name__}: {exc}"

    for script, status in zip(start.scripts, statuses, strict=False):
        if status != 0:
            return (
                f"Lifecycle configuration {script.arn} exited with status "
                f"{status}, so the app failed to start."
            )
    if len(statuses) != len(start.scripts):
        return (
            f"The app start hook returned {len(statuses)} exit statuses for "
            f"{len(start.scripts)} lifecycle scripts."
        )
    return None
