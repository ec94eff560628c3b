/**
 * Test assertions (the Deno standard library is not reachable here, so these
 * wrap node:assert with the names Deno code usually uses).
 */
import nodeAssert from "node:assert/strict";

export function assert(condition: unknown, message?: string): asserts condition {
  nodeAssert.ok(condition, message);
}

export function assertEquals<T>(
  actual: unknown,
  expected: T,
  message?: string,
): asserts actual is T {
  nodeAssert.deepStrictEqual(actual, expected, message);
}

export function assertNotEquals(actual: unknown, expected: unknown, message?: string): void {
  nodeAssert.notDeepStrictEqual(actual, expected, message);
}

export function assertMatch(actual: string, pattern: RegExp, message?: string): void {
  nodeAssert.match(actual, pattern, message);
}

export function assertStringIncludes(actual: string, expected: string, message?: string): void {
  if (!actual.includes(expected)) {
    nodeAssert.fail(
      message ?? `expected ${JSON.stringify(actual)} to include ${JSON.stringify(expected)}`,
    );
  }
}

/** Asserts that `fn` throws, optionally an error whose message matches `pattern`; returns it. */
export function assertThrows(fn: () => unknown, pattern?: RegExp): Error {
  try {
    fn();
  } catch (error) {
    if (!(error instanceof Error)) throw error;
    if (pattern) assertMatch(error.message, pattern);
    return error;
  }
  nodeAssert.fail("expected the function to throw");
}

/** Asserts that `fn` rejects, optionally with a message matching `pattern`; returns the error. */
export async function assertRejects(fn: () => Promise<unknown>, pattern?: RegExp): Promise<Error> {
  try {
    await fn();
  } catch (error) {
    if (!(error instanceof Error)) throw error;
    if (pattern) assertMatch(error.message, pattern);
    return error;
  }
  nodeAssert.fail("expected the promise to reject");
}
