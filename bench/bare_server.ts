/**
 * The baseline for bench/sidecar_http.ts: a bare Deno.serve returning a fixed
 * body. Usage: deno run --allow-net bench/bare_server.ts PORT BODY_BYTES
 */

const [port, size] = Deno.args.map(Number);
const body = new TextEncoder().encode(JSON.stringify({ pad: "x".repeat(Math.max(0, size - 10)) }));
Deno.serve(
  { hostname: "127.0.0.1", port, onListen: () => {} },
  () => new Response(body, { headers: { "content-type": "application/json" } }),
);
