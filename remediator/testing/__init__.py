"""Test doubles shipped for playbook authors and our own tests: real HTTP servers on port 0.

``FakeArm`` serves ARM (and Key Vault secrets) to the real Azure SDK clients; ``arm.clients()``
returns ``ArmClients`` wired to it. ``FakeSlack`` serves the Slack Web API to slack_sdk
clients and builds requests signed with Slack's real algorithm. ``FakeMsGraph`` serves Microsoft
Graph (``directoryObjects/getByIds`` …) to ``remediator.azure.directory.DirectoryClient``.
``FakeCredential``, ``StaticAuthPolicy`` and ``RedirectTransport`` are the pieces that make the real
clients talk to a local http server.
"""

from remediator.testing.auth import FAKE_TOKEN, FakeCredential, RedirectTransport, StaticAuthPolicy
from remediator.testing.fake_arm import FakeArm, Recorded
from remediator.testing.fake_msgraph import FakeMsGraph
from remediator.testing.fake_slack import FakeSlack, SignedRequest, SlackCall

__all__ = ["FAKE_TOKEN", "FakeArm", "FakeCredential", "FakeMsGraph", "FakeSlack", "Recorded", "RedirectTransport",
           "SignedRequest", "SlackCall", "StaticAuthPolicy"]
