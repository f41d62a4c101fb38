/**
 * Process CPU and memory for /varz (nats-server server/pse: `cpu` is a
 * percentage of one core, `mem` is the resident set size in bytes).
 */
import { availableParallelism } from 'node:os';

/** Shortest window a CPU percentage is averaged over; nats-server's pse samples once a second. */
export const CPU_SAMPLE_MS_MIN = 1000;

export class ProcessUsage {
  #lastCpuMicros: number;
  #lastWallMs: number;
  #cpuPercent: number;

  constructor() {
    const usage = process.cpuUsage();
    this.#lastCpuMicros = usage.user + usage.system;
    this.#lastWallMs = performance.now();
    // Until a window has passed, report the average since the process started.
    const uptimeMs = process.uptime() * 1000;
    this.#cpuPercent = uptimeMs > 0 ? roundPercent(this.#lastCpuMicros / 1000 / uptimeMs) : 0;
  }

  /**
   * CPU used by this process over the last window of at least
   * {@link CPU_SAMPLE_MS_MIN}, in percent of one core (can exceed 100 with
   * worker threads). Cheap to call often: within a window it returns the last value.
   */
  cpuPercent(): number {
    const nowMs = performance.now();
    const elapsedMs = nowMs - this.#lastWallMs;
    if (elapsedMs < CPU_SAMPLE_MS_MIN) return this.#cpuPercent;
    const usage = process.cpuUsage();
    const cpuMicros = usage.user + usage.system;
    this.#cpuPercent = roundPercent((cpuMicros - this.#lastCpuMicros) / 1000 / elapsedMs);
    this.#lastCpuMicros = cpuMicros;
    this.#lastWallMs = nowMs;
    return this.#cpuPercent;
  }

  /** Resident set size in bytes. */
  rssBytes(): number {
    return process.memoryUsage.rss();
  }

  /** Logical CPUs available to the process (Go `runtime.NumCPU`). */
  cores(): number {
    return availableParallelism();
  }
}

/** A CPU fraction as a percentage with two decimals. */
function roundPercent(fraction: number): number {
  return Math.max(0, Math.round(fraction * 10_000) / 100);
}
