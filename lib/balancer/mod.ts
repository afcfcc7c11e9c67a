/**
 * Worker selection strategies.
 *
 * @module
 */
export * from "./least_in_flight.ts";
