/** A handler whose method kills its worker: a worker that dies on every request. */
export function die(): never {
  console.error("dying on purpose");
  Deno.exit(3);
}
