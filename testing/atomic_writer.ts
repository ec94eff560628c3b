/**
 * Writes a directory the way the kubelet's atomic writer updates a
 * downwardAPI, projected, Secret or ConfigMap volume: the files go into a new
 * `..<timestamp>` directory, a `..data_tmp` symlink to it is renamed over
 * `..data` in one step, each visible name is a symlink `name -> ..data/name`,
 * and the old timestamped directory is removed.
 */

export async function writeLikeKubelet(dir: string, files: Record<string, string>): Promise<void> {
  const stamp = `..${new Date().toISOString().replace(/[-:.]/g, "_")}.${crypto.randomUUID()}`;
  await Deno.mkdir(`${dir}/${stamp}`);
  for (const [name, content] of Object.entries(files)) {
    await Deno.writeTextFile(`${dir}/${stamp}/${name}`, content);
  }
  let previous: string | undefined;
  try {
    previous = await Deno.readLink(`${dir}/..data`);
  } catch { /* first write */ }
  await Deno.symlink(stamp, `${dir}/..data_tmp`);
  await Deno.rename(`${dir}/..data_tmp`, `${dir}/..data`);
  for (const name of Object.keys(files)) {
    try {
      await Deno.lstat(`${dir}/${name}`);
    } catch {
      await Deno.symlink(`..data/${name}`, `${dir}/${name}`);
    }
  }
  if (previous !== undefined) await Deno.remove(`${dir}/${previous}`, { recursive: true });
}

/** A Go strconv.Quote'd value, as whole-map files (metadata.labels/annotations) hold them. */
export function goQuote(value: string): string {
  return JSON.stringify(value).replace(/\\u007f/g, "\\x7f");
}

/** The kubelet's whole-map file format: sorted `key="value"` lines. */
export function downwardApiMap(map: Record<string, string>): string {
  return Object.keys(map).sort().map((key) => `${key}=${goQuote(map[key])}\n`).join("");
}
