import { assert, assertEquals } from "../../../testing/assert.ts";
import { createLogger } from "../../shared/log.ts";
import { envFrom } from "../../shared/settings.ts";
import { loadSidecarConfig } from "../config.ts";
import { startMetadataServer } from "./server.ts";

Deno.test("an extra address that cannot be served is logged and the first one still serves", async () => {
  const dir = await Deno.makeTempDir({ prefix: "imds-sessions-test-" });
  await Deno.writeTextFile(`${dir}/token`, "header.e30.sig");
  const config = loadSidecarConfig(envFrom({
    IMDS_NAMESPACE: "team-a",
    IMDS_VM_NAME: "web-1",
    IMDS_TOKEN_PATH: `${dir}/token`,
  }));
  const logs: Record<string, unknown>[] = [];
  const log = createLogger({ component: "test", sink: (line) => logs.push(JSON.parse(line)) });
  // 192.0.2.1 (TEST-NET-1) is not an address of this machine.
  const server = startMetadataServer(config, log, {
    hostname: "127.0.0.1",
    port: 0,
    alsoListen: [{ hostname: "192.0.2.1", port: 0 }],
  });
  try {
    const response = await fetch(`http://127.0.0.1:${server.addr.port}/healthz`);
    assertEquals([response.status, await response.text()], [200, "OK"]);
    assert(
      logs.some((line) =>
        line.level === "warn" && String(line.msg).startsWith("cannot serve on 192.0.2.1:0")
      ),
    );
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
