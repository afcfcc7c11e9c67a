import assert from "node:assert/strict";
import { formatResult, parseArg, parseCallLine, splitLine } from "../lib/client/call_line.ts";

Deno.test("parseArg() reads valid JSON as JSON", () => {
  assert.equal(parseArg("42"), 42);
  assert.equal(parseArg("-1.5e3"), -1500);
  assert.equal(parseArg("true"), true);
  assert.equal(parseArg("null"), null);
  assert.equal(parseArg('"quoted string"'), "quoted string");
  assert.deepEqual(parseArg('{"a": [1, {"b": null}]}'), { a: [1, { b: null }] });
  assert.deepEqual(parseArg("[]"), []);
});

Deno.test("parseArg() keeps anything that is not JSON as a plain string", () => {
  for (const word of ["hello", "007", "1.2.3", "{a:1}", "[1,", "True", "", "'single'", "-"]) {
    assert.equal(parseArg(word), word);
  }
});

Deno.test("splitLine() separates words by any whitespace", () => {
  assert.deepEqual(splitLine("echo  a\tb   c "), ["echo", "a", "b", "c"]);
  assert.deepEqual(splitLine(""), []);
  assert.deepEqual(splitLine("   \t "), []);
});

Deno.test("splitLine() keeps JSON strings, objects and arrays with spaces as one word", () => {
  assert.deepEqual(splitLine('echo "hello world" 2'), ["echo", '"hello world"', "2"]);
  assert.deepEqual(splitLine('echo {"a": [1, 2], "b": "x y"} [1, [2, 3]]'), [
    "echo",
    '{"a": [1, 2], "b": "x y"}',
    "[1, [2, 3]]",
  ]);
  assert.deepEqual(splitLine('echo "a \\" b" "]}"'), ["echo", '"a \\" b"', '"]}"']);
  assert.deepEqual(splitLine('echo {"k": "}"}'), ["echo", '{"k": "}"}']);
});

Deno.test("splitLine() ends a bracketed word at its closing bracket", () => {
  assert.deepEqual(splitLine("echo [1]x"), ["echo", "[1]", "x"]);
});

Deno.test("splitLine() treats a stray closing bracket as an ordinary character", () => {
  assert.deepEqual(splitLine("echo ] a"), ["echo", "]", "a"]);
  assert.deepEqual(splitLine("echo :) a} b"), ["echo", ":)", "a}", "b"]);
});

Deno.test("splitLine() throws SyntaxError on an unterminated string or bracket", () => {
  assert.throws(() => splitLine('echo "open'), {
    name: "SyntaxError",
    message: /unterminated string/,
  });
  assert.throws(() => splitLine("echo [1, 2"), {
    name: "SyntaxError",
    message: /unterminated bracket/,
  });
  assert.throws(() => splitLine('echo {"a": "b}'), SyntaxError);
});

Deno.test("parseCallLine() returns the method and parsed params", () => {
  assert.deepEqual(parseCallLine('echo {"a": 1} 2 hello "x y" [true]'), {
    method: "echo",
    params: [{ a: 1 }, 2, "hello", "x y", [true]],
  });
  assert.deepEqual(parseCallLine("ping"), { method: "ping", params: [] });
});

Deno.test("parseCallLine() returns null for a blank line", () => {
  assert.equal(parseCallLine(""), null);
  assert.equal(parseCallLine("  \t"), null);
});

Deno.test("formatResult() prints compact JSON", () => {
  assert.equal(formatResult("pong"), '"pong"');
  assert.equal(formatResult({ a: [1, 2], b: null }), '{"a":[1,2],"b":null}');
  assert.equal(formatResult(3.5), "3.5");
  assert.equal(formatResult(null), "null");
});

Deno.test("formatResult() prints undefined as null and binary as an array of bytes", () => {
  assert.equal(formatResult(undefined), "null");
  assert.equal(formatResult(new Uint8Array([0, 1, 255])), "[0,1,255]");
  assert.equal(formatResult({ bin: new Uint8Array([7]) }), '{"bin":[7]}');
});
