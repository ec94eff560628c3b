/**
 * Baselines for bench/webhook_admission.ts: a bare TLS server that echoes the
 * request body as JSON. `deno` is Deno.serve (it offers HTTP/2 too; the bench
 * speaks HTTP/1.1, as the API server does); `node` is node:https in Deno, the
 * transport the webhook itself uses.
 * Usage: deno run --allow-net --allow-read bench/bare_tls_echo.ts deno|node PORT CERT KEY
 */
import { createServer } from "node:https";

const [kind, portText, certPath, keyPath] = Deno.args;
const port = Number(portText);
const cert = Deno.readTextFileSync(certPath);
const key = Deno.readTextFileSync(keyPath);

if (kind === "node") {
  createServer({ cert, key }, (request, response) => {
    const chunks: Uint8Array[] = [];
    request.on("data", (chunk: Uint8Array) => chunks.push(chunk));
    request.on("end", () => {
      const body = Buffer.concat(chunks);
      response.writeHead(200, {
        "content-type": "application/json",
        "content-length": String(body.byteLength),
      });
      response.end(body);
    });
  }).listen(port, "127.0.0.1");
} else {
  Deno.serve(
    { hostname: "127.0.0.1", port, cert, key, onListen: () => {} },
    async (request) =>
      new Response(await request.arrayBuffer(), {
        headers: { "content-type": "application/json" },
      }),
  );
}
