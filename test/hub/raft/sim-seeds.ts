/**
 * The fixed seed set `npm test` runs (STYLE.md §2.8 (3): "CI runs a fixed set
 * of seeds on every PR and many more nightly"). The long run is
 * `npm run sim -- --seeds 20000` (hub/raft/README.md).
 */
export const FIXED_SEED_FIRST = 1;
export const FIXED_SEED_COUNT = 800;
