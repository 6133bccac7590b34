"""``custom_roles``: a deployment's own role in place of one of remediator's custom roles
(remediator/actions/custom_roles.py), from the settings file or REMEDIATOR_CUSTOM_ROLES; a wrong key or id is
one line naming the file, the line of the key and what is valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from remediator.config.settings import load_settings
from remediator.errors import ConfigError

OWN = "0c7a9e51-3f2b-4d6a-8e1c-5b9d2f4a6c8e"


def test_from_the_file_and_the_environment_the_environment_winning(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text(f"custom_roles:\n  synapse-workspace-settings: {OWN.upper()}\n", encoding="utf-8")
    assert dict(load_settings({}, file=path).custom_roles) == {"synapse-workspace-settings": OWN}
    full = f"/subscriptions/3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41/providers/Microsoft.Authorization/roleDefinitions/" \
           f"{OWN}"
    env = {"REMEDIATOR_CUSTOM_ROLES": f"storage-sync-network={full}; databricks-workspace-network={OWN}"}
    s = load_settings(env, file=path)
    assert dict(s.custom_roles) == {"storage-sync-network": OWN, "databricks-workspace-network": OWN}
    assert s.for_actions()["custom_roles"] == s.custom_roles  # what the plans read


@pytest.mark.parametrize(("text", "message"), [
    ("custom_roles:\n  synapse: " + OWN + "\n",
     "{f}:2: custom_roles.synapse: not a custom role of remediator; the keys are app-service-environment-settings, "
     "databricks-workspace-network, storage-sync-network, synapse-workspace-settings"),
    ("custom_roles:\n  storage-sync-network: Storage Account Contributor\n",
     "{f}:2: custom_roles.storage-sync-network: expected a role definition id (GUID), got 'Storage Account "
     "Contributor'"),
    ("custom_roles: " + OWN + "\n",
     "{f}:1: custom_roles: expected key=value pairs separated by ';' (synapse-workspace-settings: <role definition "
     "id>), got '" + OWN + "'"),
])
def test_a_wrong_value_is_one_line_with_the_file_the_key_and_what_is_valid(tmp_path: Path, text: str,
                                                                           message: str) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings({}, file=path)
    assert str(err.value) == message.format(f=path)
