// Node's Buffer has fast latin1 helpers that @types/node does not declare.
// They exist on every supported Node.js (>= 20); canopy uses them on the hot path.
declare global {
  interface Buffer {
    latin1Write(value: string, offset?: number, length?: number): number;
    latin1Slice(start?: number, end?: number): string;
  }
}
export {};
