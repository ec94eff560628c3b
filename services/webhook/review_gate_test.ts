/**
 * The review gate: its budget follows the memory limit and the heap, reviews
 * wait in order, a full queue is refused at once, and a real webhook process
 * over TLS keeps serving through a burst of API-server-sized reviews.
 */
import { podCreateReview } from "../../testing/admission_review.ts";
import { assert, assertEquals } from "../../testing/assert.ts";
import { denoRunTask } from "../../testing/deno_tasks.ts";
import { freePort, startServer } from "../../testing/processes.ts";
import { makeCertificate, secretVolume } from "../../testing/webhook_certificates.ts";
import { type Admission, createReviewGate, reviewBudget } from "./review_gate.ts";

const MIB = 1024 * 1024;
const never = new Promise<never>(() => {});

Deno.test("budget: follows the container's memory limit, within what the heap holds", () => {
  const small = reviewBudget(192 * MIB, 4096 * MIB);
  const large = reviewBudget(1024 * MIB, 4096 * MIB);
  assert(small.bytesInProgress >= 3 * MIB, "one API-server-sized review fits at 192Mi");
  assert(large.bytesInProgress > small.bytesInProgress);
  assert(large.bytesWaiting > small.bytesWaiting);
  assert(reviewBudget(1024 * MIB, 70 * MIB).bytesInProgress < large.bytesInProgress);
  assertEquals(reviewBudget(64 * MIB, 70 * MIB), { bytesInProgress: 0, bytesWaiting: 0 });
});

Deno.test("gate: one review always passes, others wait in order, a full queue is refused", async () => {
  const gate = createReviewGate({ bytesInProgress: 10, bytesWaiting: 10 });
  const first = await gate.enter(100, never);
  assert(first.admitted, "a review larger than the budget passes when nothing is in progress");
  assertEquals(gate.tryEnter(4), undefined, "no room: the review must wait");
  const order: number[] = [];
  const second = gate.enter(4, never).then((a) => (order.push(2), a));
  const third = gate.enter(4, never).then((a) => (order.push(3), a));
  assertEquals(await gate.enter(4, never), { admitted: false, reason: "overloaded" });
  assertEquals(gate.load(), { inProgress: 1, bytes: 100, waiting: 2, waitingBytes: 8 });
  first.release();
  const [b, c] = await Promise.all([second, third]);
  assertEquals(order, [2, 3]);
  assert(b.admitted && c.admitted);
  assertEquals(gate.load(), { inProgress: 2, bytes: 8, waiting: 0, waitingBytes: 0 });
  b.release();
  b.release(); // a second release changes nothing
  c.release();
  assertEquals(gate.load(), { inProgress: 0, bytes: 0, waiting: 0, waitingBytes: 0 });
  const room = gate.tryEnter(100);
  assert(room, "with nothing in progress or waiting, a review is admitted at once");
  assertEquals(gate.load(), { inProgress: 1, bytes: 100, waiting: 0, waitingBytes: 0 });
  room();
  assertEquals(gate.load(), { inProgress: 0, bytes: 0, waiting: 0, waitingBytes: 0 });
});

Deno.test("gate: a review whose client went away leaves the queue unread", async () => {
  const gate = createReviewGate({ bytesInProgress: 1, bytesWaiting: 100 });
  const first = await gate.enter(1, never) as Extract<Admission, { admitted: true }>;
  let leave = () => {};
  const gone = new Promise<void>((resolve) => leave = resolve);
  const waiting = gate.enter(1, gone);
  leave();
  assertEquals(await waiting, { admitted: false, reason: "abandoned" });
  assertEquals(gate.load().waiting, 0);
  first.release();
});

Deno.test("webhook process: a burst of 3 MiB reviews is answered (patched or 503), probes keep answering", async () => {
  const task = denoRunTask("webhook", "services/webhook/main.ts");
  const certificate = await makeCertificate();
  const volume = await secretVolume(certificate);
  const port = freePort();
  const server = await startServer({
    args: [
      "run",
      ...task.flags,
      new URL("./main.ts", import.meta.url).pathname,
      `--listen=127.0.0.1:${port}`,
      `--tls-cert=${volume.certPath}`,
      `--tls-key=${volume.keyPath}`,
      "--sidecar-image=ghcr.io/kubevirt-imds/sidecar:test",
    ],
    env: { IMDS_WEBHOOK_MEMORY_LIMIT: "192Mi" },
    port,
  });
  const client = Deno.createHttpClient({ caCerts: [certificate.caPem], http2: false });
  try {
    const pod = JSON.parse(
      await Deno.readTextFile(new URL("./fixtures/pod_masquerade.json", import.meta.url)),
    );
    // Many small objects: the costliest shape of JSON to parse.
    const env = [];
    for (let i = 0; i < 75_000; i++) env.push({ name: `VAR_${i}`, value: String(i) });
    pod.spec.containers[0].env = env;
    const review = (uid: string) => JSON.stringify(podCreateReview(pod, { uid }));
    const body = review("burst");
    assert(body.length > 2.5 * MIB && body.length < 3 * MIB, `review of ${body.length} bytes`);
    const post = async (text: string) => {
      const response = await fetch(`https://127.0.0.1:${port}/mutate-pod`, {
        method: "POST",
        body: text,
        client,
        headers: { "content-type": "application/json" },
      });
      return { status: response.status, json: await response.json() };
    };
    const burst = Array.from({ length: 12 }, () => post(body));
    const health = await fetch(`https://127.0.0.1:${port}/healthz`, { client });
    assertEquals(health.status, 200);
    await health.body?.cancel();
    const answers = await Promise.all(burst);
    let patched = 0;
    for (const answer of answers) {
      if (answer.status === 200) {
        assertEquals(answer.json.response.allowed, true);
        assertEquals(answer.json.response.patchType, "JSONPatch");
        patched++;
      } else {
        assertEquals(answer.status, 503);
        assertEquals(answer.json.error, "overloaded");
        assert(answer.json.message.includes("failurePolicy"));
      }
    }
    assert(patched >= 2, `${patched} of 12 reviews patched`);
    // Still serving afterwards.
    const after = await post(review("after"));
    assertEquals([after.status, after.json.response.uid], [200, "after"]);
  } finally {
    client.close();
    await server.stop();
    await volume.remove();
  }
});
