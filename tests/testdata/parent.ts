/**
 * A stand-in parent process: starts `deno` with the given arguments, its
 * stdin a pipe this process holds open, its stdout and stderr shared with
 * this process. Killing this process (even with SIGKILL) closes that pipe.
 *
 * Usage: deno run --allow-run parent.ts DENO_ARGS...
 *
 * @module
 */

const child = new Deno.Command(Deno.execPath(), {
  args: Deno.args,
  stdin: "piped",
  stdout: "inherit",
  stderr: "inherit",
}).spawn();
console.error(`parent ${Deno.pid} started child ${child.pid}`);
Deno.exit((await child.status).code);
