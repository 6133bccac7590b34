"""The private-link settings: read from the file or the environment, validated like every setting, and
used by ``remediator plan --config FILE`` offline."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from remediator.actions.private_link_table import AZURE_CLOUD, US_GOVERNMENT, PrivateLinkSettings
from remediator.app.cli import main
from remediator.config.settings import Settings, load_settings
from remediator.errors import ConfigError
from tests.conftest import ROOT
from tests.support.builders import assessment_arm
from tests.support.live import live_documents

SUB = "6a2f1c3e-9b4d-4e1a-8c7f-2d5e8b9a0c41"
SUBNET = (f"/subscriptions/{SUB}/resourceGroups/rg-hub-network/providers/Microsoft.Network/virtualNetworks/"
          "vnet-hub-weu/subnets/snet-private-endpoints")
DNS = f"/subscriptions/{SUB}/resourceGroups/rg-private-dns/providers/Microsoft.Network/privateDnsZones"
OPENAI = (f"/subscriptions/{SUB}/resourceGroups/rg-ai-prod/providers/Microsoft.CognitiveServices/accounts/"
          "oai-contoso-prod")
GOOD = f"""\
private_link_subnets:
  West Europe: {SUBNET}
  "*": {SUBNET}
private_dns_zones:
  privatelink.openai.azure.com: {DNS}/privatelink.openai.azure.com
  privatelink.vaultcore.azure.net: {DNS}/privatelink.vaultcore.azure.net
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "remediator.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_file_gives_subnets_by_region_and_zones_by_name(tmp_path: Path) -> None:
    s = load_settings({}, file=_write(tmp_path, GOOD))
    assert s.private_link_subnets == {"westeurope": SUBNET, "*": SUBNET}
    assert s.private_link() == PrivateLinkSettings(
        subnets={"westeurope": SUBNET, "*": SUBNET}, cloud=AZURE_CLOUD,
        zones={"privatelink.openai.azure.com": f"{DNS}/privatelink.openai.azure.com",
               "privatelink.vaultcore.azure.net": f"{DNS}/privatelink.vaultcore.azure.net"})
    assert Settings().private_link() is None  # not configured: the network fixes refuse as before


def test_the_environment_form_and_the_cloud_from_the_arm_endpoint() -> None:
    s = load_settings({"REMEDIATOR_PRIVATE_LINK_SUBNETS": f"usgovvirginia={SUBNET}",
                       "REMEDIATOR_PRIVATE_DNS_ZONES": f"privatelink.openai.azure.us={DNS}/privatelink.openai.azure.us",
                       "REMEDIATOR_ARM_ENDPOINT": "https://management.usgovcloudapi.net"})
    link = s.private_link()
    assert link is not None
    assert (dict(link.subnets), link.cloud) == ({"usgovvirginia": SUBNET}, US_GOVERNMENT)
    assert s.describe()["private_link_subnets"] == f"usgovvirginia={SUBNET}"


@pytest.mark.parametrize(("text", "message"), [
    (f"private_link_subnets:\n  westeurope: {SUBNET}\n  northeurope: /subscriptions/x/subnets/y\n",
     "{f}:3: private_link_subnets.northeurope: '/subscriptions/x/subnets/y' is not a subnet id; expected "
     "/subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.Network/virtualNetworks/<vnet>/subnets/<subnet>"),
    (f"private_link_subnets:\n  west-europe!: {SUBNET}\n",
     "{f}:2: private_link_subnets.west-europe!: expected an Azure region name (westeurope, eastus2) or \"*\" "
     "(any other region)"),
    (f"private_dns_zones:\n  privatelink.openai.azure.com: {DNS}/privatelink.cognitiveservices.azure.com\n",
     "{f}:2: private_dns_zones.privatelink.openai.azure.com: the id names zone "
     "privatelink.cognitiveservices.azure.com, not privatelink.openai.azure.com"),
    ("private_dns_zones:\n\n  privatelink.openai.azure.com: privatelink.openai.azure.com\n",
     "{f}:3: private_dns_zones.privatelink.openai.azure.com: 'privatelink.openai.azure.com' is not a private DNS zone "
     "id; expected /subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.Network/privateDnsZones/<name>"),
    (f"private_link_subnets: {SUBNET}\n",
     "{f}:1: private_link_subnets: expected key=value pairs separated by ';' (westeurope: /subscriptions/…/subnets/"
     "snet-pe), got " + repr(SUBNET)),
])
def test_a_wrong_value_names_the_file_the_line_of_its_key_and_what_is_valid(tmp_path: Path, text: str,
                                                                          message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings({}, file=path)
    assert str(err.value) == message.format(f=path)


def test_a_zone_no_sub_resource_uses_is_a_warning_with_did_you_mean(tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    path = _write(tmp_path, f"private_dns_zones:\n  privatelink.blob.core.window.net: "
                            f"{DNS}/privatelink.blob.core.window.net\n")
    with caplog.at_level(logging.WARNING, logger="remediator.config"):
        s = load_settings({}, file=path)
    assert s.private_dns_zones == {"privatelink.blob.core.window.net": f"{DNS}/privatelink.blob.core.window.net"}
    assert f"{path}:2: private_dns_zones.privatelink.blob.core.window.net: no supported sub-resource uses zone " \
           "privatelink.blob.core.window.net; it is kept but never used; did you mean " \
           "'privatelink.blob.core.windows.net'?" in caplog.text


def test_plan_config_dry_runs_the_private_path_offline(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text(json.dumps(live_documents()), encoding="utf-8")
    (tmp_path / "finding.json").write_text(json.dumps(assessment_arm(OPENAI, "f738efb8-005f-680d-3d43-b3db762d6243")),
                                           encoding="utf-8")
    argv = ["plan", str(tmp_path / "finding.json"), "--resources", str(tmp_path / "state.json"), "--output", "json"]
    out = io.StringIO()
    assert main(argv, out=out, stdin=io.StringIO()) == 1  # without the settings: refused, nobody cut off
    (refused,) = json.loads(out.getvalue())["results"]
    assert refused["outcome"] == "error"
    assert "private_link_subnets" in refused["reason"]

    out = io.StringIO()
    assert main([*argv, "--config", str(_write(tmp_path, GOOD))], out=out, stdin=io.StringIO()) == 2
    (planned,) = json.loads(out.getvalue())["results"]
    assert [c["resource_id"].rsplit("/providers/", 1)[1] for c in planned["changes"]] == [
        "Microsoft.Network/privateEndpoints/pe-oai-contoso-prod-account",
        "Microsoft.Network/privateEndpoints/pe-oai-contoso-prod-account/privateDnsZoneGroups/default",
        "Microsoft.CognitiveServices/accounts/oai-contoso-prod"]
    assert planned["warnings"] == []


def test_plan_with_a_bad_config_is_one_line(tmp_path: Path) -> None:
    bad = _write(tmp_path, "private_link_subnets:\n  westeurope: nope\n")
    (tmp_path / "state.json").write_text(json.dumps(live_documents()), encoding="utf-8")
    finding = json.dumps(assessment_arm(OPENAI, "f738efb8-005f-680d-3d43-b3db762d6243")).encode()
    proc = subprocess.run([sys.executable, "-m", "remediator", "plan", "-", "--resources", str(tmp_path),
                           "--config", str(bad)], input=finding, capture_output=True, cwd=ROOT, check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 1
    assert "Traceback" not in err
    assert f"{bad}:2: private_link_subnets.westeurope: 'nope' is not a subnet id" in err
