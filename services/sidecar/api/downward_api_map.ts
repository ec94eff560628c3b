/**
 * The kubelet's whole-map downward API files (`metadata.labels`,
 * `metadata.annotations`): one `key="value"` line per entry, sorted, each
 * value quoted like Go's strconv.Quote (`\n`, `\"`, `\\`, `\t`, `\xNN`,
 * `\uNNNN`, `\UNNNNNNNN`; printable characters as they are).
 */

export type MapParse =
  | { map: Record<string, string> }
  | { error: string };

export function parseDownwardApiMap(text: string): MapParse {
  const map: Record<string, string> = {};
  const lines = text.split("\n");
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n];
    if (line === "") continue;
    const equals = line.indexOf("=");
    if (equals <= 0) return { error: `line ${n + 1} is not key="value"` };
    const value = unquoteGo(line.slice(equals + 1));
    if (value === undefined) {
      return {
        error: `line ${n + 1}: the value of ${line.slice(0, equals)} is not a quoted string`,
      };
    }
    map[line.slice(0, equals)] = value;
  }
  return { map };
}

const SIMPLE_ESCAPES: Record<string, number> = {
  a: 7,
  b: 8,
  f: 12,
  n: 10,
  r: 13,
  t: 9,
  v: 11,
  "\\": 92,
  '"': 34,
  "'": 39,
};

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** The string a Go double-quoted literal stands for; undefined when it is not one. */
export function unquoteGo(quoted: string): string | undefined {
  if (quoted.length < 2 || quoted[0] !== '"' || quoted[quoted.length - 1] !== '"') return undefined;
  const body = quoted.slice(1, -1);
  // Bytes, because \xNN escapes may spell out UTF-8 sequences one byte at a time.
  const bytes: number[] = [];
  for (let i = 0; i < body.length;) {
    const char = body[i];
    if (char === '"') return undefined;
    if (char !== "\\") {
      const codePoint = body.codePointAt(i)!;
      const text = String.fromCodePoint(codePoint);
      bytes.push(...encoder.encode(text));
      i += text.length;
      continue;
    }
    const kind = body[i + 1];
    if (kind !== undefined && Object.hasOwn(SIMPLE_ESCAPES, kind)) {
      bytes.push(SIMPLE_ESCAPES[kind]);
      i += 2;
      continue;
    }
    const digits = kind === "x" ? 2 : kind === "u" ? 4 : kind === "U" ? 8 : 0;
    const hex = body.slice(i + 2, i + 2 + digits);
    if (digits === 0 || !new RegExp(`^[0-9a-fA-F]{${digits}}$`).test(hex)) return undefined;
    const number = parseInt(hex, 16);
    if (kind === "x") bytes.push(number);
    else {
      if (number > 0x10ffff) return undefined;
      bytes.push(...encoder.encode(String.fromCodePoint(number)));
    }
    i += 2 + digits;
  }
  try {
    return decoder.decode(new Uint8Array(bytes));
  } catch {
    return undefined;
  }
}
