/**
 * Finding a Python that has the modules a test needs (Debian's
 * python3-msgpack and python3-pynvim install for /usr/bin/python3, which may
 * not be the first python3 on PATH).
 *
 * @module
 */

const found = new Map<string, string>();

/**
 * The path of a python3 that imports every module of `modules`.
 *
 * @throws {Error} When none does (`.ci/run` installs them).
 */
export async function pythonWith(...modules: string[]): Promise<string> {
  const key = modules.join(",");
  const known = found.get(key);
  if (known) return known;
  for (const python of ["/usr/bin/python3", "python3"]) {
    try {
      const { success } = await new Deno.Command(python, {
        args: ["-c", modules.map((m) => `import ${m}`).join("; ") || "pass"],
        stdout: "null",
        stderr: "null",
      }).output();
      if (success) {
        found.set(key, python);
        return python;
      }
    } catch {
      // not there
    }
  }
  throw new Error(
    `No python3 with ${modules.join(", ")}: install Debian's python3-${modules.join(" python3-")}`,
  );
}

/** Runs a Python script with arguments; returns its output (throws on failure). */
export async function runPython(
  python: string,
  args: string[],
  options: { timeoutMs?: number } = {},
): Promise<string> {
  const out = await new Deno.Command(python, {
    args,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(options.timeoutMs ?? 60_000),
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`${args[0]} failed (${out.code}): ${new TextDecoder().decode(out.stderr)}`);
  }
  return text;
}
