"""Read-only reads of a tenant's Azure Policy assignments and their compliance summary (``coverage``).

Plain ARM requests through azure-mgmt-resource's generic client pipeline (the credential, endpoint,
retry and logging every other read uses; no PolicyInsights SDK dependency for two requests):

* ``GET /subscriptions`` (Subscriptions - List, 2022-12-01): the subscriptions the identity can read;
* ``GET /subscriptions/{id}/providers/Microsoft.Authorization/policyAssignments`` (Policy
  Assignments - List, 2023-04-01): every assignment that applies to the subscription, paged by
  ``nextLink``;
* ``POST /subscriptions/{id}/providers/Microsoft.PolicyInsights/policyStates/latest/summarize``
  (Policy States - Summarize For Subscription, 2019-10-01): per assignment and definition, the number
  of non-compliant resources. A POST that only reads (a query), like a Resource Graph query.

Every failure is a one-line :class:`StateError` naming the request, the HTTP status and ARM's code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from remediator.errors import StateError

if TYPE_CHECKING:
    from remediator.azure.clients import ArmClients

SUBSCRIPTIONS_API = "2022-12-01"
ASSIGNMENTS_API = "2023-04-01"
INSIGHTS_API = "2019-10-01"
MAX_PAGES = 1000


def _send(clients: ArmClients, method: str, url: str, params: dict[str, str] | None, what: str) -> dict[str, Any]:
    from azure.core.exceptions import AzureError, HttpResponseError  # noqa: PLC0415
    from azure.core.rest import HttpRequest  # noqa: PLC0415

    from remediator.azure.reader import http_error_line  # noqa: PLC0415

    client = clients.resources("policy-coverage")
    try:
        response = client.send_request(HttpRequest(method, url, params=params or {}))
        if response.status_code >= 400:
            raise HttpResponseError(response=response)
        body = response.json()
    except AzureError as e:
        raise StateError(f"cannot read {what} from ARM: {http_error_line(e)}") from None
    except ValueError:
        raise StateError(f"cannot read {what} from ARM: the answer is not JSON") from None
    if not isinstance(body, dict):
        raise StateError(f"cannot read {what} from ARM: expected a JSON object")
    return body


def _pages(clients: ArmClients, path: str, api_version: str, what: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    url: str | None = clients.base_url + quote(path, safe="/")
    params: dict[str, str] | None = {"api-version": api_version}
    for _ in range(MAX_PAGES):
        if url is None:
            return out
        body = _send(clients, "GET", url, params, what)
        out.extend(d for d in body.get("value") or [] if isinstance(d, dict))
        link = body.get("nextLink")
        url, params = (link, None) if isinstance(link, str) and link else (None, None)
    raise StateError(f"cannot read {what} from ARM: more than {MAX_PAGES} pages")


def subscriptions(clients: ArmClients) -> list[str]:
    """The ids of the subscriptions the identity can read."""
    docs = _pages(clients, "/subscriptions", SUBSCRIPTIONS_API, "the subscriptions")
    return [str(d.get("subscriptionId")) for d in docs if d.get("subscriptionId")]


def assignments(clients: ArmClients, subscription_id: str) -> list[dict[str, Any]]:
    """The policy assignments that apply to the subscription (ARM documents)."""
    path = f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/policyAssignments"
    return _pages(clients, path, ASSIGNMENTS_API, f"the policy assignments of subscription {subscription_id}")


def summarize(clients: ArmClients, subscription_id: str) -> dict[str, Any]:
    """The latest policy states summary of the subscription (``SummarizeResults``)."""
    path = (f"/subscriptions/{subscription_id}/providers/Microsoft.PolicyInsights/policyStates/latest/"
            "summarize")
    return _send(clients, "POST", clients.base_url + quote(path, safe="/"), {"api-version": INSIGHTS_API},
                 f"the policy compliance summary of subscription {subscription_id}")
