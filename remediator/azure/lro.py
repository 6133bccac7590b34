"""One ARM write by id, following ARM's long-running-operation protocol: the actions' only write path.

:func:`write` sends ``PUT``, ``PATCH``, ``DELETE`` or a ``POST`` action to a resource id through
azure-mgmt-resource's generic client pipeline (same credential, endpoint, retries and logging as
every other call) and follows the protocol itself, whatever status the service answers with: the
generated ``*_by_id`` operations accept only the generic spec's status codes (``Resources_UpdateById``:
200 or 202), and a container registry's PATCH answers 201 with ``Azure-AsyncOperation``
(containerregistry ``RegistryUpdate.json``).

* no operation header (or 204): done, the response body is the result;
* ``Azure-AsyncOperation`` (with 200, 201 or 202): that operation is polled until its ``status`` is
  terminal (``Failed``/``Canceled`` raise ``ActionError`` with its error code and message);
  201 or 202 with only ``Location``: that URL is polled until it stops answering 202;
* then a ``PUT`` or ``PATCH`` reads the resource back (its final state), a ``POST`` reads
  ``Location`` when the operation gave one, a ``DELETE`` returns nothing.

With ``if_match`` (the ETag the plan read, for the types whose documents carry one) the write is
conditional: ``412 PreconditionFailed`` raises ``ChangedSincePlan`` (the plan is stale). Every write
passes the fencing check first (``remediator.azure.fence``, in the clients' pipeline).

Waits honour ``Retry-After`` (at most 60 s; else the clients' ``polling_interval``, ARM's default
30 s), for at most ``timeout`` seconds in all. An error status raises azure-core's
``HttpResponseError`` (ARM's ``{"error": {"code", "message"}}`` parsed, as the SDK clients do).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from remediator import ids
from remediator.errors import ActionError, ChangedSincePlan

if TYPE_CHECKING:
    from remediator.azure.clients import ArmClients

Method = Literal["PUT", "PATCH", "DELETE", "POST"]


def write(clients: ArmClients, method: Method, resource_id: str, api_version: str, *, body: Any = None,
          action: str = "", timeout: float = 600.0, if_match: str | None = None) -> Any:
    """``method`` on ``resource_id`` (``POST <resource_id>/<action>`` for an action) with the JSON
    ``body``; the final JSON document (``None`` when there is none). See the module docstring.

    ``if_match``: the ETag of the document the plan read; the write is conditional on it (ARM's
    optimistic concurrency) and a 412 raises ``ChangedSincePlan``: someone wrote the resource since."""
    from azure.core.rest import HttpRequest  # noqa: PLC0415

    # the generic client ignores its subscription for a full URL; a management group scope has none
    client = clients.resources(ids.parse(resource_id).subscription_id or "management-group")
    url = clients.base_url + quote(resource_id.rstrip("/") + (f"/{action}" if action else ""), safe="/")
    headers = {"If-Match": if_match} if if_match else None
    first = client.send_request(HttpRequest(method, url, params={"api-version": api_version}, json=body,
                                            headers=headers))
    if if_match and first.status_code == 412:
        raise ChangedSincePlan(f"{method} refused: the resource changed since the plan read it (ETag {if_match} "
                               "no longer current); nothing was written", resource_id=resource_id)
    response = _checked(first)
    async_url = response.headers.get("Azure-AsyncOperation")
    location = response.headers.get("Location") if response.status_code in (201, 202) else None
    if response.status_code == 204 or not (async_url or location):
        return None if method == "DELETE" else _json_body(response)
    name = action or f"{method} of {ids.parse(resource_id).name}"
    interval = float(clients.client_kwargs.get("polling_interval", 30))
    deadline = time.monotonic() + timeout
    wait = _retry_after(response.headers.get("Retry-After"), interval)
    while True:
        if time.monotonic() + wait > deadline:
            raise ActionError(f"{name} did not finish within {timeout:.0f} s", resource_id=resource_id)
        time.sleep(wait)
        poll = _checked(client.send_request(HttpRequest("GET", async_url or location or "")))
        wait = _retry_after(poll.headers.get("Retry-After"), interval)
        if async_url:
            operation = _json_body(poll) or {}
            status = str(operation.get("status", "")).lower()
            if status in ("failed", "canceled", "cancelled"):
                error = operation.get("error") or {}
                raise ActionError(f"{name} {status}: {error.get('code', '')} {error.get('message', '')}".strip(),
                                  resource_id=resource_id)
            if status != "succeeded":
                continue
        elif poll.status_code == 202:
            continue
        if method in ("PUT", "PATCH"):
            final = client.send_request(HttpRequest("GET", url, params={"api-version": api_version}))
            return _json_body(_checked(final))
        if method == "DELETE":
            return None
        if async_url and location:
            return _json_body(_checked(client.send_request(HttpRequest("GET", location))))
        return None if async_url else _json_body(poll)


def post_action(clients: ArmClients, resource_id: str, action: str, api_version: str, *,
                body: Any = None, timeout: float = 600.0) -> Any:
    """``POST <resource_id>/<action>`` (``endGetAccess``…), followed to its end; see :func:`write`."""
    return write(clients, "POST", resource_id, api_version, body=body, action=action, timeout=timeout)


def _checked(response: Any) -> Any:
    if response.status_code >= 400:
        from azure.core.exceptions import HttpResponseError  # noqa: PLC0415

        raise HttpResponseError(response=response)
    return response


def _retry_after(value: str | None, default: float) -> float:
    try:
        return max(0.0, min(float(value), 60.0)) if value is not None else default
    except ValueError:
        return default


def _json_body(response: Any) -> Any:
    try:
        return response.json() if response.content else None
    except ValueError:
        return None
