"""Test doubles shipped for playbook authors and our own tests: real HTTP servers on port 0.

``FakeArm`` serves ARM (and Key Vault secrets) to the real Azure SDK clients; ``arm.clients()``
returns ``ArmClients`` wired to it. ``FakeCredential``, ``StaticAuthPolicy`` and
``RedirectTransport`` are the pieces that make the real clients talk to a local http server.
"""

from remediator.testing.auth import FAKE_TOKEN, FakeCredential, RedirectTransport, StaticAuthPolicy
from remediator.testing.fake_arm import FakeArm, Recorded

__all__ = ["FAKE_TOKEN", "FakeArm", "FakeCredential", "Recorded", "RedirectTransport", "StaticAuthPolicy"]
