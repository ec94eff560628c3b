import { assertEquals, assertThrows } from "../testing/assert.ts";
import {
  cleanTranscript,
  exitCodeOf,
  framedCommand,
  framedOutput,
  parseCurlOutput,
} from "./transcript.ts";

Deno.test("curl: body and status are split at the last line", () => {
  assertEquals(parseCurlOutput('{"vmName":"a"}\n200'), { status: 200, body: '{"vmName":"a"}' });
  assertEquals(parseCurlOutput("line 1\nline 2\n400\n"), { status: 400, body: "line 1\nline 2" });
  assertEquals(parseCurlOutput("204"), { status: 204, body: "" });
  assertEquals(parseCurlOutput("x\r\n200\r\n"), { status: 200, body: "x" });
});

Deno.test("curl: no status, or no answer at all, is an error quoting the output", () => {
  assertThrows(() => parseCurlOutput("curl: (7) Failed to connect"), /does not end with a status/);
  assertThrows(() => parseCurlOutput("\n000"), /no HTTP answer \(status 000\)/);
});

Deno.test("console: the framed command's echo does not count as its output", () => {
  const line = framedCommand("curl -s http://169.254.169.254/v1/identity", "7");
  // What a serial console shows: the echoed line, then the output, with \r\n and colours.
  const transcript =
    `$ ${line}\r\n<<begin-7>>\r\n\x1b[0m{"vmName":"a"}\r\n200\r\n<<end-7:0>>\r\n$ `;
  assertEquals(framedOutput(transcript, "7"), { output: '{"vmName":"a"}\n200\n', exitCode: 0 });
});

Deno.test("console: an unfinished command has no output yet; exit codes are kept", () => {
  assertEquals(framedOutput("$ x\n<<begin-3>>\npartial", "3"), undefined);
  assertEquals(framedOutput("nothing", "3"), undefined);
  assertEquals(framedOutput("<<begin-3>>\n<<end-3:7>>\n", "3"), { output: "", exitCode: 7 });
  // A later command with a similar id is not mistaken for this one.
  assertEquals(framedOutput("<<begin-1>>\na\n<<end-1:0>>\n<<begin-12>>\nb\n", "12"), undefined);
});

Deno.test("console: colours and carriage returns are removed", () => {
  assertEquals(cleanTranscript("\x1b[1;32mok\x1b[0m\r\n"), "ok\n");
});

Deno.test("exec: the exit code comes from the stream's closing status", () => {
  assertEquals(exitCodeOf({ status: "Success" }), 0);
  assertEquals(
    exitCodeOf(
      {
        status: "Failure",
        reason: "NonZeroExitCode",
        details: { causes: [{ reason: "ExitCode", message: "7" }] },
      } as Parameters<typeof exitCodeOf>[0],
    ),
    7,
  );
  assertThrows(() => exitCodeOf(undefined), /closed without a status/);
  assertThrows(
    () => exitCodeOf({ status: "Failure", details: { causes: [] } }),
    /the command did not run/,
  );
});
