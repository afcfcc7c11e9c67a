/**
 * Fake worker processes for pool tests: each "process" is an in-process
 * BackendServer on the worker's Unix socket, so the pool's logic runs
 * against real sockets without starting processes.
 *
 * @module
 */

import { BackendServer } from "../../lib/backend/backend_server.ts";
import { builtinMethods, type Methods } from "../../lib/backend/methods.ts";
import type { Requester } from "../../lib/dispatch/call.ts";
import type { ExitStatus, SpawnFn, WorkerProcessHandle } from "../../lib/process/spawn.ts";
import { decodeMessage, type WireError } from "../../lib/protocol/mod.ts";

/** One fake process. */
export interface FakeProcess extends WorkerProcessHandle {
  /** Its server, for inspection. */
  readonly server: BackendServer;
  /** Ends it as a crash would: connections drop, nothing is answered. */
  crash(code?: number, signal?: string | null): void;
}

/** A spawner whose processes are in-process servers. */
export class FakeSpawner {
  readonly processes: FakeProcess[] = [];
  #nextPid = 100_000;
  readonly #methods: Methods;
  readonly #shutdownDelay: number;

  /**
   * @param methods Extra methods every fake worker serves.
   * @param shutdownDelay Milliseconds a fake worker takes to stop when asked (to widen races).
   */
  constructor(methods: Methods = {}, shutdownDelay = 0) {
    this.#methods = methods;
    this.#shutdownDelay = shutdownDelay;
  }

  /** The spawn function to give the pool. */
  readonly spawn: SpawnFn = (line) => {
    const socket = line.env.PROXY_WORKER_SOCKET!;
    const pid = this.#nextPid++;
    let resolveStatus!: (s: ExitStatus) => void;
    const status = new Promise<ExitStatus>((r) => resolveStatus = r);
    let exited = false;
    // deno-lint-ignore prefer-const
    let proc: FakeProcess;
    const end = (s: ExitStatus, graceful: boolean) => {
      if (exited) return;
      exited = true;
      const stop = () =>
        void (graceful ? server.close() : server.destroy()).then(() => resolveStatus(s));
      if (graceful && this.#shutdownDelay > 0) setTimeout(stop, this.#shutdownDelay);
      else stop();
    };
    const server: BackendServer = new BackendServer({
      address: { transport: "unix", path: socket },
      methods: {
        ...builtinMethods({
          testMethods: true,
          requests: (): number => server.requests,
          exit: (code) => proc.crash(code),
        }),
        pid: () => pid,
        ...this.#methods,
      },
      onShutdownRequest: () => end({ code: 0, signal: null }, true),
    });
    void server.listen();
    proc = {
      pid,
      server,
      status,
      kill: (signal = "SIGTERM") => end({ code: 128 + 9, signal }, false),
      closeStdin: () => end({ code: 0, signal: null }, true),
      lastLines: () => [],
      crash: (code = 70, signal: string | null = null) => end({ code, signal }, false),
    };
    this.processes.push(proc);
    return proc;
  };
}

/** What a {@linkcode RecordingRequester} got for one msgid. */
export type Outcome = { result: unknown } | { error: WireError };

/** A requester that records answers and lets tests await them. */
export class RecordingRequester implements Requester {
  closed = false;
  readonly outcomes = new Map<number, Outcome>();
  #waiters = new Map<number, (o: Outcome) => void>();

  deliver(msgid: number, frame: Uint8Array): void {
    const msg = decodeMessage(frame);
    if (msg.type !== 1) throw new Error("not a response");
    this.#record(
      msgid,
      msg.error == null ? { result: msg.result } : { error: msg.error as WireError },
    );
  }

  fail(msgid: number, error: WireError): void {
    this.#record(msgid, { error });
  }

  #record(msgid: number, outcome: Outcome): void {
    this.outcomes.set(msgid, outcome);
    this.#waiters.get(msgid)?.(outcome);
    this.#waiters.delete(msgid);
  }

  /** Resolves with the outcome of `msgid` once it is known; rejects after `timeoutMs`. */
  outcome(msgid: number, timeoutMs = 5000): Promise<Outcome> {
    const known = this.outcomes.get(msgid);
    if (known) return Promise.resolve(known);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(msgid);
        reject(new Error(`Request ${msgid} got no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.set(msgid, (o) => {
        clearTimeout(timer);
        resolve(o);
      });
    });
  }
}
