/**
 * Debian's cloud-init (the `cloud-init` package), called through
 * /usr/bin/python3: validates a network configuration with cloud-init's own
 * schema where the installed release has one for network config (24.1+), and
 * renders it with its netplan and ENI renderers as a guest whose NICs have
 * the given MACs and names would.
 */

export const DEBIAN_PYTHON = "/usr/bin/python3";

export interface CloudInitRender {
  /** "validated" by cloud-init's network schema, or "unavailable" in this release. */
  schema: "validated" | "unavailable";
  netplan: string;
  eni: string;
  version: string;
}

const SCRIPT = `
import json, sys
import yaml
from cloudinit import version
from cloudinit.net import eni, netplan, network_state
from cloudinit.sources.helpers import openstack

request = json.load(sys.stdin)
nics = {mac.lower(): name for mac, name in request["nics"].items()}
network_state.get_interfaces_by_mac = lambda *a, **k: dict(nics)
network_state.find_interface_name_from_mac = lambda mac: nics.get(mac.lower())
result = {"version": version.version_string()}
if request["format"] == "network-config":
    config = yaml.safe_load(request["document"])
    try:
        from cloudinit.config.schema import SchemaType, validate_cloudconfig_schema
        network_schema = getattr(SchemaType, "NETWORK_CONFIG", None)
    except ImportError:
        network_schema = None
    if network_schema is None:
        result["schema"] = "unavailable"
    else:
        validate_cloudconfig_schema(config, schema_type=network_schema, strict=True)
        result["schema"] = "validated"
else:
    config = openstack.convert_net_json(json.loads(request["document"]), known_macs=nics)
    result["schema"] = "unavailable"
state = network_state.parse_net_config_data(config, skip_broken=False)
result["netplan"] = netplan.Renderer()._render_content(state)
result["eni"] = eni.Renderer()._render_interfaces(state)
print(json.dumps(result))
`;

/** Whether Debian's cloud-init is installed (tests that need it are skipped otherwise, failed under CI). */
export function cloudInitInstalled(): boolean {
  try {
    Deno.statSync("/usr/lib/python3/dist-packages/cloudinit/net/network_state.py");
    return true;
  } catch {
    return false;
  }
}

/**
 * Renders `document` (NoCloud network-config YAML, or OpenStack
 * network_data.json) for a guest whose NICs are `nics` (MAC → name).
 * Throws with cloud-init's own error when it refuses the document.
 */
export async function renderWithCloudInit(
  format: "network-config" | "network_data.json",
  document: string,
  nics: Record<string, string>,
): Promise<CloudInitRender> {
  const child = new Deno.Command(DEBIAN_PYTHON, {
    args: ["-c", SCRIPT],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(JSON.stringify({ format, document, nics })));
  await writer.close();
  const output = await child.output();
  if (!output.success) {
    throw new Error(`cloud-init refused the document:\n${new TextDecoder().decode(output.stderr)}`);
  }
  return JSON.parse(new TextDecoder().decode(output.stdout));
}
