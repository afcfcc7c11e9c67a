import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import fc from "fast-check";
import { encodeValue as pack } from "../lib/protocol/encode.ts";
import { decodeValue as unpack } from "../lib/protocol/decode.ts";
import { ErrorCode, ProxyError } from "../lib/protocol/errors.ts";
import { peekRequestMsgid } from "../lib/protocol/envelope.ts";
import { FrameDecoder } from "../lib/protocol/frame_decoder.ts";

/** Concatenates bytes given as numbers, arrays of numbers or Uint8Arrays. */
function bytes(...parts: (number | number[] | Uint8Array)[]): Uint8Array {
  const flat: number[] = [];
  for (const part of parts) {
    if (typeof part === "number") flat.push(part);
    else flat.push(...part);
  }
  return new Uint8Array(flat);
}

function filled(n: number, value = 0x61): number[] {
  return new Array(n).fill(value);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function sameBytes(a: Uint8Array | null, b: Uint8Array): boolean {
  return a !== null && Buffer.compare(a, b) === 0;
}

// One of every MessagePack header, hand-encoded so each format is really present.
const EVERY_FORMAT = bytes(
  [0xdc, 0x00, 0x27], // array16 of 39 items
  0xc0, // nil
  0xc2, // false
  0xc3, // true
  0x05, // positive fixint
  0xff, // negative fixint (-1)
  [0xcc, 0xff], // uint8
  [0xcd, 0x12, 0x34], // uint16
  [0xce, 0x12, 0x34, 0x56, 0x78], // uint32
  [0xcf, 0x00, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // uint64
  [0xd0, 0x80], // int8
  [0xd1, 0x80, 0x00], // int16
  [0xd2, 0x80, 0x00, 0x00, 0x00], // int32
  [0xd3, 0xff, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01], // int64
  [0xca, 0x3f, 0xc0, 0x00, 0x00], // float32
  [0xcb, 0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18], // float64 (pi)
  [0xa3, 0x61, 0x62, 0x63], // fixstr
  [0xd9, 0x28], // str8 of 40
  filled(40),
  [0xda, 0x01, 0x00], // str16 of 256
  filled(256),
  [0xdb, 0x00, 0x00, 0x00, 0x05], // str32 of 5
  filled(5),
  [0xc4, 0x03, 0x00, 0xc1, 0xff], // bin8 (payload bytes are never headers)
  [0xc5, 0x00, 0x05], // bin16 of 5
  [0xc1, 0xc1, 0xc1, 0xc1, 0xc1],
  [0xc6, 0x00, 0x00, 0x00, 0x02, 0xdd, 0xdf], // bin32 of 2
  [0x92, 0x01, 0x02], // fixarray
  [0xdd, 0x00, 0x00, 0x00, 0x01, 0xc0], // array32 of 1
  [0x81, 0xa1, 0x6b, 0x01], // fixmap
  [0xde, 0x00, 0x01, 0xa1, 0x6b, 0x90], // map16 of 1
  [0xdf, 0x00, 0x00, 0x00, 0x01, 0x01, 0x80], // map32 of 1
  [0xd4, 0x01, 0xc1], // fixext1
  [0xd5, 0x01, 0xc1, 0xc1], // fixext2
  [0xd6, 0x01, 0xc1, 0xc1, 0xc1, 0xc1], // fixext4
  [0xd7, 0x01], // fixext8
  filled(8, 0xc1),
  [0xd8, 0x01], // fixext16
  filled(16, 0xc1),
  [0xc7, 0x03, 0x01, 0xc1, 0xc1, 0xc1], // ext8 of 3
  [0xc8, 0x00, 0x02, 0x01, 0xc1, 0xc1], // ext16 of 2
  [0xc9, 0x00, 0x00, 0x00, 0x01, 0x01, 0xc1], // ext32 of 1
  [0x91, 0x91, 0x91, 0x81, 0xa1, 0x61, 0x91, 0xc0], // nested [[[{a: [nil]}]]]
  [0x80, 0x90, 0xa0], // empty map, array, string
);

const BIG_VALUE = [
  0,
  123456,
  "echo",
  [
    "x".repeat(70_000),
    new Uint8Array(3000).fill(0xc1),
    Array.from({ length: 300 }, (_, i) => ({ i, neg: -i * 1000, f: i / 7 })),
  ],
];

/** Messages of many shapes; the last one is larger than 64 KiB. */
const SAMPLES: Uint8Array[] = [
  bytes(0x01), // the smallest message: one fixint
  pack([0, 1, "echo", ["hello"]]),
  pack([1, 1, null, { a: 1, b: [true, false, null], c: "é€😀" }]),
  pack([2, "shutdown", []]),
  pack([0, 0xffffffff, "m", [-1, -33, -129, -32769, -(2 ** 31), 2 ** 53 - 1, 1.5, 0.1]]),
  pack([0, 2, "dates", [new Date(0), new Date(1.5e12 + 1), new Date(-1)]]),
  pack([0, 3, "bin", [new Uint8Array([0, 0xc1, 255]), new Uint8Array(300).fill(0x93)]]),
  pack([0, 4, "nested", [[[[[{ deep: [[[]]] }]]]], { m: { n: { o: {} } } }]]),
  pack(["a".repeat(31), "b".repeat(32), "c".repeat(255), "d".repeat(256), "e".repeat(65_536)]),
  EVERY_FORMAT,
  pack(BIG_VALUE),
];

Deno.test("the FrameDecoder samples are valid MessagePack of the intended formats", () => {
  assert.ok(SAMPLES.at(-1)!.length > 64 * 1024);
  const formats = new Set(SAMPLES.flatMap((s) => Array.from(s)));
  // str8, str16, str32, bin8, bin16, float64, uint32, int8, int16, int32, fixext, ext8
  for (const b of [0xd9, 0xda, 0xdb, 0xc4, 0xc5, 0xcb, 0xce, 0xd0, 0xd1, 0xd2, 0xd6, 0xc7]) {
    assert.ok(formats.has(b), `no sample contains 0x${b.toString(16)}`);
  }
  for (const sample of SAMPLES.filter((s) => s !== EVERY_FORMAT)) unpack(sample);
});

Deno.test("FrameDecoder.next() returns a message pushed in one piece", () => {
  for (const sample of SAMPLES) {
    const decoder = new FrameDecoder();
    decoder.push(sample);
    assert.ok(sameBytes(decoder.next(), sample));
    assert.equal(decoder.next(), null);
    assert.equal(decoder.buffered, 0);
  }
});

Deno.test("FrameDecoder.next() returns null for an empty buffer", () => {
  const decoder = new FrameDecoder();
  assert.equal(decoder.next(), null);
  decoder.push(new Uint8Array(0));
  assert.equal(decoder.next(), null);
});

Deno.test("FrameDecoder.next() returns a message split at every byte position", () => {
  for (const [index, sample] of SAMPLES.entries()) {
    const decoder = new FrameDecoder();
    for (let at = 0; at <= sample.length; at++) {
      decoder.push(sample.subarray(0, at));
      if (at < sample.length) {
        const early = decoder.next();
        if (early !== null) {
          assert.fail(
            `sample ${index}: a frame came out after only ${at} of ${sample.length} bytes`,
          );
        }
      }
      decoder.push(sample.subarray(at));
      const frame = decoder.next();
      if (at === sample.length && frame === null) assert.fail(`sample ${index}: no frame`);
      if (!sameBytes(frame, sample)) {
        assert.fail(`sample ${index} split at ${at}: got ${frame?.length} bytes, not the message`);
      }
      assert.equal(decoder.next(), null);
      assert.equal(decoder.buffered, 0);
    }
  }
});

Deno.test("FrameDecoder.next() returns a message split into three at every pair of positions", () => {
  for (const sample of SAMPLES.filter((s) => s.length <= 120)) {
    for (let i = 0; i <= sample.length; i++) {
      for (let j = i; j <= sample.length; j++) {
        const decoder = new FrameDecoder();
        const frames: Uint8Array[] = [];
        for (const part of [sample.subarray(0, i), sample.subarray(i, j), sample.subarray(j)]) {
          decoder.push(part);
          let frame;
          while ((frame = decoder.next()) !== null) frames.push(frame.slice());
        }
        assert.equal(frames.length, 1, `split at ${i} and ${j}`);
        assert.ok(sameBytes(frames[0]!, sample), `split at ${i} and ${j}`);
      }
    }
  }
});

Deno.test("FrameDecoder.next() returns a message pushed one byte at a time", () => {
  for (const sample of SAMPLES.slice(0, -1)) {
    const decoder = new FrameDecoder();
    for (let i = 0; i < sample.length - 1; i++) {
      decoder.push(sample.subarray(i, i + 1));
      assert.equal(decoder.next(), null);
    }
    decoder.push(sample.subarray(sample.length - 1));
    assert.ok(sameBytes(decoder.next(), sample));
  }
});

Deno.test("FrameDecoder.next() returns every message of many pushed in one read, in order", () => {
  const stream = concat([...SAMPLES, ...SAMPLES]);
  const decoder = new FrameDecoder();
  decoder.push(stream);
  const expected = [...SAMPLES, ...SAMPLES];
  for (const [i, sample] of expected.entries()) {
    assert.ok(sameBytes(decoder.next(), sample), `message ${i}`);
  }
  assert.equal(decoder.next(), null);
  assert.equal(decoder.buffered, 0);
});

Deno.test("FrameDecoder.next() finds boundaries when a message starts mid-read at every position", () => {
  const small = SAMPLES.filter((s) => s.length < 2000);
  const stream = concat(small);
  const decoder = new FrameDecoder();
  for (let at = 0; at <= stream.length; at++) {
    const frames: Uint8Array[] = [];
    for (const part of [stream.subarray(0, at), stream.subarray(at)]) {
      decoder.push(part);
      let frame;
      while ((frame = decoder.next()) !== null) frames.push(frame.slice());
    }
    assert.equal(frames.length, small.length, `split at ${at}`);
    for (const [i, sample] of small.entries()) {
      if (!sameBytes(frames[i]!, sample)) assert.fail(`split at ${at}: message ${i} differs`);
    }
  }
});

/** Feeds `chunks` through reserve()/commit() as a socket read loop does. */
function feedByReserve(decoder: FrameDecoder, stream: Uint8Array, cuts: number[]): Uint8Array[] {
  const frames: Uint8Array[] = [];
  const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
  let from = 0;
  for (const to of [...points, stream.length]) {
    let off = from;
    while (off < to) {
      const region = decoder.reserve();
      assert.ok(region.length > 0, "reserve() gave no room");
      const n = Math.min(region.length, to - off);
      region.set(stream.subarray(off, off + n));
      decoder.commit(n);
      off += n;
      let frame;
      while ((frame = decoder.next()) !== null) frames.push(frame.slice());
    }
    from = to;
  }
  return frames;
}

Deno.test("FrameDecoder.next() returns the same messages for random chunkings (property)", () => {
  const value = fc.oneof(
    fc.jsonValue(),
    fc.uint8Array({ maxLength: 300 }),
    fc.integer(),
    fc.double({ noNaN: true }),
    fc.string({ maxLength: 300, unit: "grapheme" }),
    fc.constantFrom(2 ** 32, -(2 ** 40), 2 ** 53 - 1),
  );
  fc.assert(
    fc.property(
      fc.array(value, { minLength: 1, maxLength: 20 }),
      fc.array(fc.nat(), { maxLength: 30 }),
      fc.integer({ min: 1, max: 64 }),
      (values, cuts, readSize) => {
        const messages = values.map((v) => pack(v));
        const stream = concat(messages);
        const frames = feedByReserve(new FrameDecoder({ readSize }), stream, cuts);
        assert.equal(frames.length, messages.length);
        for (const [i, m] of messages.entries()) assert.ok(sameBytes(frames[i]!, m));
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("FrameDecoder rejects a message as too large as soon as its header says so", () => {
  const cases: [string, Uint8Array][] = [
    ["bin32 announcing 1000 bytes", bytes(0xc6, 0x00, 0x00, 0x03, 0xe8)],
    ["str16 announcing 200 bytes", bytes(0xda, 0x00, 0xc8)],
    ["array32 announcing 2^32-1 items", bytes(0xdd, 0xff, 0xff, 0xff, 0xff)],
    ["map16 announcing 60 pairs", bytes(0xde, 0x00, 0x3c)],
    ["ext32 inside a request", bytes(0x94, 0x00, 0x01, 0xa1, 0x6d, 0x91, 0xc9, 0, 0, 1, 0, 1)],
  ];
  for (const [name, head] of cases) {
    const decoder = new FrameDecoder({ maxMessageSize: 100 });
    decoder.push(head);
    assert.throws(
      () => decoder.next(),
      (err: unknown) => err instanceof ProxyError && err.code === ErrorCode.MESSAGE_TOO_LARGE,
      name,
    );
  }
});

Deno.test("FrameDecoder rejects a message of maxMessageSize + 1 bytes and accepts one of maxMessageSize", () => {
  const exact = pack("x".repeat(98)); // 0xd9, len, 98 bytes = 100
  assert.equal(exact.length, 100);
  const decoder = new FrameDecoder({ maxMessageSize: 100 });
  decoder.push(concat([exact, exact]));
  assert.ok(sameBytes(decoder.next(), exact));
  assert.ok(sameBytes(decoder.next(), exact), "the limit applies per message, not per buffer");

  const over = pack("x".repeat(99));
  const rejecting = new FrameDecoder({ maxMessageSize: 100 });
  rejecting.push(over.subarray(0, 2));
  assert.throws(() => rejecting.next(), { code: ErrorCode.MESSAGE_TOO_LARGE });
});

Deno.test("FrameDecoder rejects many small items adding up to more than the limit", () => {
  const decoder = new FrameDecoder({ maxMessageSize: 64 });
  decoder.push(pack(Array.from({ length: 30 }, () => 1)));
  assert.equal(decoder.next()!.length, 33); // array16 header + 30 fixints
  decoder.push(pack(Array.from({ length: 70 }, () => 1)).subarray(0, 60));
  assert.throws(() => decoder.next(), { code: ErrorCode.MESSAGE_TOO_LARGE });
});

Deno.test("FrameDecoder rejects byte 0xc1 as PARSE_ERROR wherever a header is expected", () => {
  for (
    const head of [bytes(0xc1), bytes(0x93, 0x01, 0xc1), bytes(0x81, 0xc1), bytes(0x91, 0x91, 0xc1)]
  ) {
    const decoder = new FrameDecoder();
    decoder.push(head);
    assert.throws(() => decoder.next(), (err: unknown) => {
      assert.ok(err instanceof ProxyError);
      assert.equal(err.code, ErrorCode.PARSE_ERROR);
      assert.match(err.message, /0xc1/);
      return true;
    });
  }
});

Deno.test("FrameDecoder returns the messages before a bad byte, then fails", () => {
  const decoder = new FrameDecoder();
  const good = pack([0, 1, "ping", []]);
  decoder.push(concat([good, bytes(0xc1)]));
  assert.ok(sameBytes(decoder.next(), good));
  assert.throws(() => decoder.next(), { code: ErrorCode.PARSE_ERROR });
});

Deno.test("FrameDecoder errors are sticky: every later call throws the same error", () => {
  const parse = new FrameDecoder();
  parse.push(bytes(0xc1));
  let first: unknown;
  try {
    parse.next();
  } catch (err) {
    first = err;
  }
  assert.ok(first instanceof ProxyError);
  parse.push(pack([0, 1, "ping", []]));
  for (let i = 0; i < 3; i++) assert.throws(() => parse.next(), (err: unknown) => err === first);

  const large = new FrameDecoder({ maxMessageSize: 10 });
  large.push(bytes(0xc4, 0xff));
  assert.throws(() => large.next(), { code: ErrorCode.MESSAGE_TOO_LARGE });
  large.push(bytes(0x01));
  assert.throws(() => large.next(), { code: ErrorCode.MESSAGE_TOO_LARGE });
});

Deno.test("FrameDecoder.partial() exposes the start of the rejected message", () => {
  const decoder = new FrameDecoder({ maxMessageSize: 64 });
  const before = pack([0, 1, "ping", []]);
  // A request with msgid 0x1234 whose params hold a 1000-byte bin: only its start arrives.
  const head = bytes(0x94, 0x00, 0xcd, 0x12, 0x34, 0xa4, ...new TextEncoder().encode("echo"), 0x91);
  decoder.push(concat([before, head, bytes(0xc5, 0x03, 0xe8, 1, 2, 3)]));
  assert.ok(sameBytes(decoder.next(), before));
  assert.throws(() => decoder.next(), { code: ErrorCode.MESSAGE_TOO_LARGE });
  const partial = decoder.partial();
  assert.ok(sameBytes(partial.subarray(0, head.length), head));
  assert.equal(peekRequestMsgid(partial), 0x1234);
});

Deno.test("FrameDecoder's buffer stays bounded over a long stream read through reserve()/commit()", () => {
  const readSize = 1024;
  const maxMessageSize = 8 * 1024;
  const decoder = new FrameDecoder({ readSize, maxMessageSize });
  const message = pack([0, 1, "echo", ["y".repeat(maxMessageSize - 20)]]);
  assert.ok(message.length <= maxMessageSize);
  const small = pack([0, 2, "ping", []]);
  let largest = 0;
  let count = 0;
  for (let round = 0; round < 2000; round++) {
    const m = round % 5 === 0 ? message : small;
    let off = 0;
    while (off < m.length) {
      const region = decoder.reserve();
      largest = Math.max(largest, region.buffer.byteLength);
      // Odd-sized reads so messages straddle reads at ever-changing offsets.
      const n = Math.min(region.length, m.length - off, 777);
      region.set(m.subarray(off, off + n));
      decoder.commit(n);
      off += n;
      while (decoder.next() !== null) count++;
      assert.ok(decoder.buffered <= maxMessageSize);
    }
  }
  assert.equal(count, 2000);
  assert.equal(decoder.buffered, 0);
  assert.ok(
    largest <= maxMessageSize + readSize,
    `buffer grew to ${largest} bytes, above maxMessageSize + readSize`,
  );
});

Deno.test("FrameDecoder constructor rejects a maxMessageSize that is not a positive integer", () => {
  for (const bad of [0, -1, 1.5, NaN]) {
    assert.throws(() => new FrameDecoder({ maxMessageSize: bad }), RangeError);
  }
});

Deno.test("FrameDecoder.reserve() always offers room up to the read size", () => {
  const decoder = new FrameDecoder({ readSize: 16 });
  for (let i = 0; i < 50; i++) {
    const region = decoder.reserve();
    assert.ok(region.length >= 16);
    region[0] = 0x01;
    decoder.commit(1);
    assert.deepEqual(decoder.next(), bytes(0x01));
  }
});
