import { assert, assertEquals } from "../../../testing/assert.ts";
import {
  findHeadEnd,
  type HeadResult,
  MAX_HEAD_BYTES,
  parseRequestHead,
  type RequestHead,
  wholeCommonHead,
} from "./request_head.ts";

const encoder = new TextEncoder();

function parse(text: string): HeadResult {
  return parseRequestHead(encoder.encode(text));
}

function head(text: string): RequestHead {
  const result = parse(text);
  if ("protocolError" in result) throw new Error(JSON.stringify(result.protocolError));
  return result.head;
}

function refusal(text: string): [number, string] {
  const result = parse(text);
  if (!("protocolError" in result)) throw new Error(`accepted: ${JSON.stringify(text)}`);
  return [result.protocolError.status, result.protocolError.error];
}

Deno.test("the request target, not the Host header, gives the path and query", () => {
  const parsed = head("GET /healthz HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n");
  assertEquals([parsed.method, parsed.path, parsed.query], ["GET", "/healthz", ""]);
  const withQuery = head("GET /v1/token?audience=vault HTTP/1.1\r\nHost: x:80\r\n\r\n");
  assertEquals([withQuery.path, withQuery.query], ["/v1/token", "audience=vault"]);
  // Absolute-form (what a client talking to a proxy sends): its own path, whatever Host says.
  const absolute = head("GET http://evil/v1/meta-data?x HTTP/1.1\r\nHost: other\r\n\r\n");
  assertEquals([absolute.path, absolute.query], ["/v1/meta-data", "x"]);
  assertEquals(head("GET http://169.254.169.254 HTTP/1.1\r\nHost: a\r\n\r\n").path, "/");
});

Deno.test("Host must be one well-formed host[:port]; HTTP/1.1 requires it", () => {
  for (
    const host of [
      "169.254.169.254",
      "169.254.169.254:80",
      "metadata.example",
      "[fd00:ec2::254]",
      "[::1]:8080",
      "localhost:65535",
    ]
  ) {
    assertEquals(head(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`).headers.get("host"), host);
  }
  for (
    const host of [
      "x/v1/token?",
      "x?",
      "a b",
      "x#y",
      "x:99999",
      "x:port",
      "",
      "[zz]",
      "user@x",
      "x\\y",
    ]
  ) {
    assertEquals(refusal(`GET /healthz HTTP/1.1\r\nHost: ${host}\r\n\r\n`), [400, "bad_request"]);
  }
  assertEquals(refusal("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), [400, "bad_request"]);
  assertEquals(refusal("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n"), [400, "bad_request"]);
  assertEquals(head("GET / HTTP/1.0\r\n\r\n").version, "HTTP/1.0");
});

Deno.test("header names are case-insensitive; values are kept as sent, trimmed", () => {
  const parsed = head(
    "GET / HTTP/1.1\r\nHOST: a\r\nMetaData:   TRUE \t\r\nX_Forwarded_For: 1\r\nA: 1\r\na: 2\r\n\r\n",
  );
  assertEquals(parsed.headers.get("metadata"), "TRUE");
  assertEquals(parsed.headers.get("x_forwarded_for"), "1");
  assertEquals(parsed.headers.get("a"), "1, 2");
});

Deno.test("malformed request lines and header lines are a 400; other versions a 505", () => {
  for (
    const text of [
      "GET /\r\nHost: a\r\n\r\n",
      "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET / HTTP/1.1 extra\r\nHost: a\r\n\r\n",
      "GET / HTTX/1.1\r\nHost: a\r\n\r\n",
      "GET * HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET example:80 HTTP/1.1\r\nHost: a\r\n\r\n",
      "G(T / HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nNo colon\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nName : value\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n folded\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nX: \x00\r\n\r\n",
    ]
  ) {
    assertEquals(refusal(text), [400, "bad_request"], JSON.stringify(text));
  }
  assertEquals(refusal("PRI * HTTP/2.0\r\n\r\n"), [505, "http_version_not_supported"]);
  assertEquals(refusal("GET / HTTP/0.9\r\n\r\n"), [505, "http_version_not_supported"]);
  for (const method of ["CONNECT", "TRACE", "get"]) {
    assertEquals(refusal(`${method} / HTTP/1.1\r\nHost: a\r\n\r\n`), [
      501,
      "method_not_implemented",
    ]);
  }
});

Deno.test("bodies are framed by Content-Length or chunked, never both", () => {
  assertEquals(head("GET / HTTP/1.1\r\nHost: a\r\n\r\n").body, { kind: "none" });
  assertEquals(head("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n").body, {
    kind: "none",
  });
  assertEquals(
    head("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000000000000\r\n\r\n").body,
    { kind: "length", length: 1e15 },
  );
  assertEquals(
    head("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n").body,
    { kind: "length", length: 5 },
  );
  assertEquals(head("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n").body, {
    kind: "chunked",
  });
  for (
    const fields of [
      "Content-Length: 5\r\nContent-Length: 6",
      "Content-Length: -1",
      "Content-Length: 0x10",
      "Transfer-Encoding: gzip, chunked",
      "Transfer-Encoding: chunked\r\nContent-Length: 5",
    ]
  ) {
    assertEquals(refusal(`POST / HTTP/1.1\r\nHost: a\r\n${fields}\r\n\r\n`), [400, "bad_request"]);
  }
});

Deno.test("a head ends at the first empty line, CRLF or bare LF, found incrementally", () => {
  const bytes = encoder.encode("GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /next");
  assertEquals(findHeadEnd(bytes, 0, 0), 27);
  assertEquals(findHeadEnd(encoder.encode("GET / HTTP/1.1\nHost: a\n\n"), 0, 0), 24);
  assertEquals(findHeadEnd(encoder.encode("GET / HTTP/1.1\r\nHost: a\r\n"), 0, 0), -1);
  // Resuming after the bytes already searched still sees a blank line split across reads.
  const split = encoder.encode("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  assertEquals(findHeadEnd(split, 0, 26), 27);
  assertEquals(head("GET / HTTP/1.1\nHost: a\n\n").path, "/");
});

Deno.test("a head over MAX_HEAD_BYTES is a 431", () => {
  const padding = "a".repeat(MAX_HEAD_BYTES);
  assertEquals(refusal(`GET / HTTP/1.1\r\nHost: a\r\nX: ${padding}\r\n\r\n`), [
    431,
    "headers_too_large",
  ]);
  const justFits = `GET / HTTP/1.1\r\nHost: a\r\nX: \r\n\r\n`;
  const filler = "b".repeat(MAX_HEAD_BYTES - justFits.length);
  assert("head" in parse(justFits.replace("X: ", `X: ${filler}`)));
  // One byte more is refused, also when the bytes are exactly that one head (the quick path).
  const oneOver = justFits.replace("X: ", `X: ${filler}b`);
  assertEquals(refusal(oneOver), [431, "headers_too_large"]);
  assertEquals(wholeCommonHead(encoder.encode(oneOver)), undefined);
});

/** Heads of the common shape (common method, path target, printable ASCII), good and bad. */
const COMMON_SHAPED_HEADS = [
  "GET /v1/identity HTTP/1.1\r\nHost: 169.254.169.254\r\nMetadata: true\r\n\r\n",
  "HEAD /v1/meta-data?x=1&y HTTP/1.0\nAccept:\t*/* \t\nA: 1\na:2\n\n",
  "PUT /latest/api/token HTTP/1.1\r\nHost: [::1]:80\nX-Ttl:  \t \r\nEmpty:\r\n\r\n",
  "POST /v1/p HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n",
  "DELETE / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
  "OPTIONS / HTTP/1.1\r\nHost: x:99999\r\n\r\n",
  "PATCH / HTTP/1.1\r\nAccept: */*\r\n\r\n",
  "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n",
  "GET / HTTP/1.0\r\n\r\n",
];

Deno.test("a head of printable ASCII reads the same as one carrying other bytes", () => {
  const latin1 = (text: string) => Uint8Array.from(text, (c) => c.charCodeAt(0));
  for (const text of COMMON_SHAPED_HEADS) {
    const plain = parseRequestHead(latin1(text));
    // A field with a byte above 0x7e takes the line-by-line checks.
    const other = parseRequestHead(latin1(text.replace("\n", "\nX-Other: caf\xe9\n")));
    if ("head" in plain && "head" in other) {
      assertEquals(other.head.headers.get("x-other"), "caf\xe9");
      const rest = new Map([...other.head.headers].filter(([name]) => name !== "x-other"));
      assertEquals({ head: { ...other.head, headers: rest } }, plain, JSON.stringify(text));
      continue;
    }
    assertEquals(other, plain, JSON.stringify(text));
  }
  // Bytes 0x80-0x9f read as windows-1252, as TextDecoder("latin1") reads them.
  const euro = parseRequestHead(latin1("GET / HTTP/1.1\r\nHost: a\r\nX: \x80\r\n\r\n"));
  assertEquals("protocolError" in euro && euro.protocolError.status, 400);
});

Deno.test("bytes that are one whole common head read as parseRequestHead reads them; others are left to it", () => {
  for (const text of COMMON_SHAPED_HEADS) {
    const bytes = encoder.encode(text);
    assertEquals(findHeadEnd(bytes, 0, 0), bytes.length, JSON.stringify(text));
    assertEquals(wholeCommonHead(bytes), parseRequestHead(bytes), JSON.stringify(text));
  }
  const others = [
    // Pipelined: a second head follows the first.
    "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    // A body follows the head.
    "POST /v1/p HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nab\r\n",
    // Not complete yet.
    "GET / HTTP/1.1\r\nHost: a\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\n\r",
    // Not of the common shape.
    "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
    "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
    "TRACE / HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
    "\r\n\r\n",
    "\n\n",
    `GET / HTTP/1.1\r\nHost: a\r\nX: ${"a".repeat(MAX_HEAD_BYTES)}\r\n\r\n`,
  ];
  for (const text of others) {
    assertEquals(wholeCommonHead(encoder.encode(text)), undefined, JSON.stringify(text));
  }
});

Deno.test("a head sent again, after many others, parses as it did the first time", () => {
  const text = (host: string) =>
    `GET /v1/identity HTTP/1.1\r\nHost: ${host}\r\nMetadata: true\r\n\r\n`;
  const first = parse(text("169.254.169.254"));
  assert("head" in first);
  assertEquals(first.head.headers.get("host"), "169.254.169.254");
  // Heads that differ in one field each get their own answer, also beyond any table of recent heads.
  for (let i = 0; i < 100; i++) {
    const other = parse(text(`10.0.2.${i}`));
    assert("head" in other);
    assertEquals(other.head.headers.get("host"), `10.0.2.${i}`);
  }
  assertEquals(parse(text("169.254.169.254")), first);
  // A bad head stays bad when sent again.
  const bad = "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n";
  for (let i = 0; i < 2; i++) {
    const result = parse(bad);
    assertEquals(
      "protocolError" in result && result.protocolError.message,
      "the request has more than one Host header",
    );
  }
});
