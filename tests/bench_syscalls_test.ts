/** The pure parts of the benchmark's syscall counts: `perf stat` output and the table. */

import assert from "node:assert/strict";
import { parsePerfStat, perfEvents, syscallTable } from "../scripts/bench/syscalls.ts";

// What `perf stat -x , -e ... -p PID` wrote on this machine (Linux 6.18, perf 6.x).
const PERF_OUTPUT = [
  "201,,raw_syscalls:sys_enter,1990980,100.00,,",
  "6,,syscalls:sys_enter_read,1990980,100.00,,",
  "2,,syscalls:sys_enter_write,1990980,100.00,,",
  "<not counted>,,syscalls:sys_enter_writev,0,0.00,,",
  "0,,syscalls:sys_enter_io_uring_enter,1990980,100.00,,",
  "",
].join("\n");

Deno.test("parsePerfStat reads counts by syscall, skipping what was not counted", () => {
  assert.deepEqual(
    parsePerfStat(PERF_OUTPUT),
    new Map([["total", 201], ["read", 6], ["write", 2], ["io_uring_enter", 0]]),
  );
  assert.match(perfEvents(), /^raw_syscalls:sys_enter,syscalls:sys_enter_read,/);
});

Deno.test("syscallTable gives calls per request, grouped", () => {
  const counts = new Map([["total", 5000], ["read", 1000], ["recvfrom", 500], ["write", 1000], [
    "epoll_wait",
    250,
  ], ["futex", 10]]);
  assert.deepEqual(
    syscallTable([
      { target: "ours", shape: { connections: 16, pipeline: 16 }, requests: 10_000, counts },
      { target: "haproxy", shape: { connections: 1, pipeline: 1 }, requests: 0, counts },
    ]),
    [
      "| connections x pipeline | target | all | reads | writes | epoll | futex |",
      "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
      "| 16 x 16 | ours | 0.500 | 0.150 | 0.100 | 0.025 | 0.001 |",
      "| 1 x 1 | haproxy | - | - | - | - | - |",
    ],
  );
});
