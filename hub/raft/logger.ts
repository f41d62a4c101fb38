/**
 * The logging seam of the Raft core. The core never picks a backend (no pino
 * here, STYLE.md §2.7): the host adapts its pino child, the simulator
 * records lines into its transcript. Messages are short stable phrases;
 * values go in `fields`.
 */
export type RaftLogFields = Readonly<Record<string, string | number | boolean>>;

export interface RaftLogger {
  debug(message: string, fields: RaftLogFields): void;
  info(message: string, fields: RaftLogFields): void;
  warn(message: string, fields: RaftLogFields): void;
}

export const silentRaftLogger: RaftLogger = {
  debug() {},
  info() {},
  warn() {},
};
