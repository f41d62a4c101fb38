/**
 * fast-check run parameters for this folder's properties. A failure message
 * includes fast-check's seed and path; `SEED=<n> node --import tsx --test …`
 * replays it (STYLE.md §2.11 (10): print the seed, replay with one value).
 */
import type { Parameters } from 'fast-check';

export function fastCheckParameters<T>(options: { numRuns: number }): Parameters<T> {
  const seedText = process.env['SEED'];
  if (seedText === undefined || seedText === '') return { numRuns: options.numRuns };
  const seed = Number(seedText);
  if (!Number.isSafeInteger(seed)) throw new Error(`SEED must be an integer, got ${seedText}`);
  return { numRuns: options.numRuns, seed };
}
