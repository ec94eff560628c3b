/**
 * What the suite expects of the metadata service's answers. Each check returns
 * the list of problems found (empty = as expected), so a failure names every
 * difference at once. The sidecar container's check is testing/sidecar_container.ts.
 */

export interface ExpectedIdentity {
  namespace: string;
  vmName: string;
  serviceAccountName: string;
}

/** The `/v1/identity` answer names this VM, its namespace and its service account. */
export function identityProblems(body: string, expected: ExpectedIdentity): string[] {
  let identity: Record<string, unknown>;
  try {
    identity = JSON.parse(body);
  } catch {
    return [`identity is not JSON: ${body.slice(0, 200)}`];
  }
  const problems: string[] = [];
  for (const [key, value] of Object.entries(expected)) {
    if (identity[key] !== value) {
      problems.push(
        `${key} is ${JSON.stringify(identity[key])}, expected ${JSON.stringify(value)}`,
      );
    }
  }
  return problems;
}
