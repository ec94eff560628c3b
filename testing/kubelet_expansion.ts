/**
 * The kubelet's `$(VAR)` expansion of literal env values (and command/args),
 * as Kubernetes implements it (third_party/forked/golang/expansion/expand.go):
 * byte by byte over the UTF-8 value, `$$` becomes `$`, `$(NAME)` becomes the
 * value of NAME when it is defined and stays as written when it is not, and a
 * `$` before any other byte is kept together with that byte, which Go turns
 * into a character of its own: a `$` before a multi-byte character therefore
 * yields bytes that are not UTF-8.
 */

const DOLLAR = 0x24;
const OPEN = 0x28;
const CLOSE = 0x29;

const encoder = new TextEncoder();

/** Looks a variable up; undefined when it is not defined. */
export type Lookup = (name: Uint8Array) => Uint8Array | undefined;

/** `$(name)`, what an undefined reference expands to. */
function wrap(name: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(name.length + 3);
  bytes.set([DOLLAR, OPEN]);
  bytes.set(name, 2);
  bytes[bytes.length - 1] = CLOSE;
  return bytes;
}

/**
 * Go's `string(b)` of one byte: the UTF-8 encoding of the code point with
 * that number (0x80-0xFF become two bytes).
 */
function goStringOfByte(byte: number): Uint8Array {
  return encoder.encode(String.fromCodePoint(byte));
}

/** Expands `input` (bytes) the way the kubelet does. */
export function expand(input: Uint8Array, lookup: Lookup): Uint8Array {
  const out: number[] = [];
  const push = (bytes: Uint8Array) => {
    for (const byte of bytes) out.push(byte);
  };
  let checkpoint = 0;
  for (let cursor = 0; cursor < input.length; cursor++) {
    if (input[cursor] !== DOLLAR || cursor + 1 >= input.length) continue;
    push(input.subarray(checkpoint, cursor));
    const next = input[cursor + 1];
    let advance = 1;
    if (next === DOLLAR) {
      out.push(DOLLAR);
    } else if (next === OPEN) {
      const close = input.indexOf(CLOSE, cursor + 2);
      if (close === -1) {
        out.push(DOLLAR, OPEN);
      } else {
        const name = input.subarray(cursor + 2, close);
        push(lookup(name) ?? wrap(name));
        advance = close - cursor;
      }
    } else {
      out.push(DOLLAR);
      push(goStringOfByte(next));
    }
    cursor += advance;
    checkpoint = cursor + 1;
  }
  push(input.subarray(checkpoint));
  return Uint8Array.from(out);
}

/** A lookup over maps searched in order (the container's env so far, then service links). */
export function lookupIn(...contexts: ReadonlyMap<string, Uint8Array>[]): Lookup {
  const decoder = new TextDecoder("utf-8", { fatal: false });
  return (name) => {
    const key = decoder.decode(name);
    for (const context of contexts) {
      const value = context.get(key);
      if (value !== undefined) return value;
    }
    return undefined;
  };
}

/** expand() over strings, for values and names that are UTF-8 text. */
export function expandText(input: string, variables: Record<string, string>): Uint8Array {
  const context = new Map(
    Object.entries(variables).map(([name, value]) => [name, encoder.encode(value)]),
  );
  return expand(encoder.encode(input), lookupIn(context));
}
