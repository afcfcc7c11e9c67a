/**
 * Per-request worker selection: least requests in flight, ties broken by the
 * power of two random choices.
 *
 * @module
 */

/** What the balancer looks at. */
export interface Candidate {
  /** Requests sent and not yet answered. */
  readonly inFlight: number;
  /** Requests answered so far. */
  readonly served: number;
}

/**
 * Picks the candidate with the fewest requests in flight, below `limit`.
 * Among several with that fewest, two are drawn at random and the one that
 * has served fewer wins: the load spreads evenly without every proxy (or
 * every idle moment) hammering the first worker of the list.
 *
 * @param candidates Workers that may take work.
 * @param limit A worker with this many in flight takes no more.
 * @param random Source of randomness in [0, 1). @default {Math.random}
 * @returns The index of the chosen candidate, or -1 when all are full.
 *
 * @example Usage
 * ```ts
 * import { pickLeastInFlight } from "./least_in_flight.ts";
 * const workers = [{ inFlight: 3, served: 10 }, { inFlight: 1, served: 10 }];
 * console.log(pickLeastInFlight(workers, 8)); // 1
 * ```
 */
export function pickLeastInFlight(
  candidates: readonly Candidate[],
  limit: number,
  random: () => number = Math.random,
): number {
  let best = -1;
  let bestLoad = limit;
  let ties = 0;
  for (let i = 0; i < candidates.length; i++) {
    const load = candidates[i]!.inFlight;
    if (load < bestLoad) {
      best = i;
      bestLoad = load;
      ties = 1;
    } else if (load === bestLoad && best >= 0) ties++;
  }
  if (ties <= 1) return best;
  // Two random picks among the tied (the k-th tied index, found by a scan).
  const a = nthWithLoad(candidates, bestLoad, Math.floor(random() * ties));
  let bIndex = Math.floor(random() * (ties - 1));
  const aRank = rankOf(candidates, bestLoad, a);
  if (bIndex >= aRank) bIndex++;
  const b = nthWithLoad(candidates, bestLoad, bIndex);
  return candidates[b]!.served < candidates[a]!.served ? b : a;
}

function nthWithLoad(candidates: readonly Candidate[], load: number, n: number): number {
  for (let i = 0; i < candidates.length; i++) {
    if (candidates[i]!.inFlight === load && n-- === 0) return i;
  }
  return -1;
}

function rankOf(candidates: readonly Candidate[], load: number, index: number): number {
  let rank = 0;
  for (let i = 0; i < index; i++) if (candidates[i]!.inFlight === load) rank++;
  return rank;
}
