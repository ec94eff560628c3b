/**
 * HTTP/1.x request heads (RFC 9112): where one ends in a byte stream, and what
 * it says. Only what the metadata API needs: the request line, the header
 * fields and the Host rules. Anything malformed is a ProtocolError, answered
 * by the server and followed by closing the connection.
 *
 * Routing follows the request target, never the Host header: Host is only
 * checked to be a single well-formed host[:port].
 */

/** Request line plus header fields, through the blank line, larger than this are refused with 431. */
export const MAX_HEAD_BYTES = 8192;

export interface RequestHead {
  /** Upper-case letters only; never CONNECT, TRACE or TRACK (those are a ProtocolError). */
  method: string;
  /** The request target as sent: "/v1/token?audience=x" (absolute-form reduced to it). */
  target: string;
  /** The path of the request target ("/v1/token"); absolute-form targets are reduced to it. */
  path: string;
  /** The query string, without the "?"; empty when there is none. */
  query: string;
  version: "HTTP/1.0" | "HTTP/1.1";
  /** Header fields by lower-case name; repeated fields joined with ", ". */
  headers: ReadonlyMap<string, string>;
  /** How the body is framed: none, a Content-Length, or chunked. */
  body: BodyFraming;
}

export type BodyFraming = { kind: "none" } | { kind: "length"; length: number } | {
  kind: "chunked";
};

export interface ProtocolError {
  status: 400 | 431 | 501 | 505;
  error: string;
  message: string;
  /** What was understood before the error, for the request log. */
  method?: string;
  path?: string;
}

export type HeadResult = { head: RequestHead } | { protocolError: ProtocolError };

const LF = 0x0a;
const CR = 0x0d;

/**
 * Where the request head that starts at `start` ends: the index just after
 * its blank line, or -1 if it is not complete yet. Lines end with CRLF or a
 * bare LF. Only bytes from `from` on are searched for new line ends, so a
 * head that arrives one byte at a time is still scanned once.
 */
export function findHeadEnd(bytes: Uint8Array, start: number, from: number): number {
  let i = bytes.indexOf(LF, Math.max(from, start));
  while (i >= 0) {
    const previous = i - 1;
    if (
      previous >= start &&
      (bytes[previous] === LF ||
        (bytes[previous] === CR && previous - 1 >= start && bytes[previous - 1] === LF))
    ) {
      return i + 1;
    }
    i = bytes.indexOf(LF, i + 1);
  }
  return -1;
}

/** How many empty lines (CRLF or LF) precede the request line; RFC 9112 §2.2 says to skip them. */
export function leadingEmptyLines(bytes: Uint8Array, end: number): number {
  let i = 0;
  while (i < end && (bytes[i] === CR || bytes[i] === LF)) i++;
  return i;
}

const latin1 = new TextDecoder("latin1");
/** Methods a Request object cannot carry (fetch's forbidden methods). */
const UNSUPPORTED_METHODS = new Set(["CONNECT", "TRACE", "TRACK"]);
/** Methods known to be valid tokens of upper-case letters: no pattern needs to check them. */
const COMMON_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]);
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const REQUEST_LINE = /^([^ ]+) ([^ ]+) ([^ ]+)$/;
const TARGET = /^[\x21-\x7e]+$/;
const HTTP_VERSION = /^HTTP\/\d\.\d$/;
const ABSOLUTE_FORM = /^https?:\/\/[^/?#]*/i;
/** A field line: a token, a colon, optional whitespace, a value of visible characters, spaces and tabs. */
const FIELD_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([\t\x20-\x7e\x80-\xff]*?)[ \t]*$/;
/** host[:port]: an IP literal in brackets, or an IPv4 address or registered name (RFC 3986). */
const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=-]+)(?::(\d{1,5}))?$/;

/**
 * The shape of nearly every request head: a common method, a target that is a
 * path, HTTP/1.1 or HTTP/1.0, and field lines of printable ASCII. Such a head
 * passes every check below, so it is taken apart with indexOf alone (one
 * pattern instead of one per line); any other head goes through the checks
 * line by line, which name what is wrong with it.
 */
const COMMON_HEAD =
  /^(?:GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH) \/[\x21-\x7e]* HTTP\/1\.[01]\r?\n(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\t\x20-\x7e]*\r?\n)*\r?\n$/;

/** Parses the head in `bytes` (request line through the blank line, no leading empty lines). */
export function parseRequestHead(bytes: Uint8Array): HeadResult {
  if (bytes.length > MAX_HEAD_BYTES) return { protocolError: tooLarge() };
  // ASCII reads the same as latin1, and fromCharCode costs less than a TextDecoder;
  // a head with other bytes fails COMMON_HEAD and is decoded as latin1 below.
  const ascii = String.fromCharCode.apply(null, bytes as unknown as number[]);
  return recentOrCommonHead(ascii) ?? anyHead(latin1.decode(bytes));
}

/**
 * The head when `bytes` are exactly one head of the common shape and nothing
 * after it, as when a client sends a request and waits for its answer; else
 * undefined. Such bytes end with the head's blank line, and COMMON_HEAD allows
 * no other empty line, so no search for the head's end is needed.
 */
export function wholeCommonHead(bytes: Uint8Array): HeadResult | undefined {
  const last = bytes.length - 1;
  if (bytes.length > MAX_HEAD_BYTES || last < 3 || bytes[last] !== LF) return undefined;
  const before = bytes[last - 1];
  if (before !== LF && (before !== CR || bytes[last - 2] !== LF)) return undefined;
  return recentOrCommonHead(String.fromCharCode.apply(null, bytes as unknown as number[]));
}

/**
 * Heads of the common shape parsed lately, by their text. A client that sends
 * the same head again (a guest polling an endpoint, a probe, a flood of one
 * request) costs a lookup instead of a parse. Each result is shared by every
 * request with that text, so nothing changes it (its fields are a
 * ReadonlyMap). Only short heads are kept, and the table is emptied when
 * full: heads that all differ cost one lookup each and hold at most
 * RECENT_HEADS × RECENT_HEAD_CHARS characters.
 */
const recentHeads = new Map<string, HeadResult>();
const RECENT_HEADS = 32;
const RECENT_HEAD_CHARS = 1024;

/** What the head `text` says when it has the common shape (from recentHeads if seen lately); else undefined. */
function recentOrCommonHead(text: string): HeadResult | undefined {
  const known = recentHeads.get(text);
  if (known !== undefined) return known;
  if (!COMMON_HEAD.test(text)) return undefined;
  const result = commonHead(text);
  if (text.length <= RECENT_HEAD_CHARS) {
    if (recentHeads.size >= RECENT_HEADS) recentHeads.clear();
    recentHeads.set(text, result);
  }
  return result;
}

/** A head that matches COMMON_HEAD. */
function commonHead(text: string): HeadResult {
  const methodEnd = text.indexOf(" ");
  const lineEnd = text.indexOf("\n");
  const targetEnd = text.lastIndexOf(" ", lineEnd);
  const method = text.slice(0, methodEnd);
  const target = text.slice(methodEnd + 1, targetEnd);
  // The last character of "HTTP/1.x".
  const version = text.charCodeAt(targetEnd + 8) === 0x31 ? "HTTP/1.1" : "HTTP/1.0";
  const headers = new Map<string, string>();
  let hosts = 0;
  let start = lineEnd + 1;
  for (let first = text.charCodeAt(start); first !== CR && first !== LF;) {
    const colon = text.indexOf(":", start);
    const end = text.indexOf("\n", colon);
    const name = text.slice(start, colon).toLowerCase();
    // The value holds only tabs and printable ASCII (and the CR before the LF): trim
    // removes exactly the spaces, tabs and CR around it.
    const value = text.slice(colon + 1, end).trim();
    if (name === "host") hosts++;
    const previous = headers.get(name);
    headers.set(name, previous === undefined ? value : `${previous}, ${value}`);
    start = end + 1;
    first = text.charCodeAt(start);
  }
  return completeHead(method, target, version, headers, hosts);
}

/** Any head, checked line by line. */
function anyHead(text: string): HeadResult {
  const lines = text.split("\n");
  lines.pop(); // after the final LF
  lines.pop(); // the blank line
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].endsWith("\r")) lines[i] = lines[i].slice(0, -1);
  }

  const requestLine = REQUEST_LINE.exec(lines[0]);
  if (requestLine === null) {
    return badRequest("the request line is not METHOD TARGET HTTP/1.1");
  }
  const [, method, target, version] = requestLine;
  const common = COMMON_METHODS.has(method);
  if (!common && !TOKEN.test(method)) return badRequest("the method is not a valid token");
  if (!common && (!/^[A-Z]+$/.test(method) || UNSUPPORTED_METHODS.has(method))) {
    return {
      protocolError: {
        status: 501,
        error: "method_not_implemented",
        message: `the method ${clip(method)} is not implemented`,
        method,
      },
    };
  }
  if (version !== "HTTP/1.1" && !HTTP_VERSION.test(version)) {
    return badRequest(`"${clip(version)}" is not an HTTP version`);
  }
  if (version !== "HTTP/1.1" && version !== "HTTP/1.0") {
    return {
      protocolError: {
        status: 505,
        error: "http_version_not_supported",
        message: `${version} is not supported; use HTTP/1.1`,
        method,
      },
    };
  }
  if (!TARGET.test(target)) return badRequest("the request target has invalid characters", method);
  let pathAndQuery = target;
  if (!target.startsWith("/")) {
    const absolute = ABSOLUTE_FORM.exec(target);
    if (absolute === null) {
      return badRequest("the request target must be a path such as /v1/meta-data", method);
    }
    pathAndQuery = target.slice(absolute[0].length) || "/";
    if (!pathAndQuery.startsWith("/")) {
      return badRequest("the request target must be a path such as /v1/meta-data", method);
    }
  }

  const headers = new Map<string, string>();
  let hosts = 0;
  for (let i = 1; i < lines.length; i++) {
    const field = FIELD_LINE.exec(lines[i]);
    if (field === null) {
      return badRequest(
        lines[i].startsWith(" ") || lines[i].startsWith("\t")
          ? "folded header lines (starting with whitespace) are not accepted"
          : `header line ${i} is not "Name: value"`,
        method,
        targetPath(pathAndQuery),
      );
    }
    const name = field[1].toLowerCase();
    if (name === "host") hosts++;
    const previous = headers.get(name);
    headers.set(name, previous === undefined ? field[2] : `${previous}, ${field[2]}`);
  }
  return completeHead(method, pathAndQuery, version, headers, hosts);
}

/** The path of a target in origin form: up to the "?". */
function targetPath(pathAndQuery: string): string {
  const question = pathAndQuery.indexOf("?");
  return question < 0 ? pathAndQuery : pathAndQuery.slice(0, question);
}

/** The checks on the fields of a head whose lines are well formed: Host and the body's framing. */
function completeHead(
  method: string,
  pathAndQuery: string,
  version: "HTTP/1.0" | "HTTP/1.1",
  headers: Map<string, string>,
  hosts: number,
): HeadResult {
  const question = pathAndQuery.indexOf("?");
  const path = question < 0 ? pathAndQuery : pathAndQuery.slice(0, question);
  const query = question < 0 ? "" : pathAndQuery.slice(question + 1);
  const host = headers.get("host");
  if (hosts > 1) return badRequest("the request has more than one Host header", method, path);
  if (host === undefined) {
    if (version === "HTTP/1.1") {
      return badRequest("HTTP/1.1 requests need a Host header", method, path);
    }
  } else if (host !== lastValidHost) {
    if (!validHost(host)) {
      return badRequest(`the Host header "${clip(host)}" is not a valid host[:port]`, method, path);
    }
    lastValidHost = host;
  }
  const body = bodyFraming(headers);
  if ("invalid" in body) return badRequest(body.invalid, method, path);
  return { head: { method, target: pathAndQuery, path, query, version, headers, body } };
}

/** The last Host value found valid: a client sends the same one with every request. */
let lastValidHost: string | undefined;

const NO_BODY: BodyFraming = Object.freeze({ kind: "none" });

/** RFC 9112 §6.3: chunked, a Content-Length, or no body; anything ambiguous is refused. */
function bodyFraming(headers: Map<string, string>): BodyFraming | { invalid: string } {
  const encoding = headers.get("transfer-encoding");
  const length = headers.get("content-length");
  if (encoding !== undefined) {
    if (length !== undefined) {
      return { invalid: "a request may not carry both Transfer-Encoding and Content-Length" };
    }
    if (encoding.toLowerCase() !== "chunked") {
      return { invalid: `Transfer-Encoding "${clip(encoding)}" is not supported; use chunked` };
    }
    return { kind: "chunked" };
  }
  if (length === undefined) return NO_BODY;
  // Repeated identical values ("5, 5") are one length.
  const values = new Set(length.split(",").map((value) => value.trim()));
  const [value] = values;
  if (values.size !== 1 || !/^\d{1,20}$/.test(value)) {
    return { invalid: `Content-Length "${clip(length)}" is not a length in bytes` };
  }
  const bytes = Number(value);
  return bytes === 0 ? NO_BODY : { kind: "length", length: bytes };
}

function validHost(host: string): boolean {
  const match = HOST.exec(host);
  return match !== null && (match[1] === undefined || Number(match[1]) <= 65535);
}

/** The 431 for a head beyond MAX_HEAD_BYTES. */
export function tooLarge(): ProtocolError {
  return {
    status: 431,
    error: "headers_too_large",
    message: `the request line and headers exceed ${MAX_HEAD_BYTES} bytes`,
  };
}

function badRequest(message: string, method?: string, path?: string): HeadResult {
  return { protocolError: { status: 400, error: "bad_request", message, method, path } };
}

/** Echoes at most 64 characters of a client's value. */
function clip(value: string): string {
  return value.length > 64 ? `${value.slice(0, 64)}…` : value;
}
