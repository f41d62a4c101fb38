/**
 * The link's pure parts, for leaf/ and hub/ (and for the simulator's mutants, which load a
 * mutated copy of this folder through this file). The codec (codec.ts) is exported separately.
 */
export * from './frames.ts';
export * from './limits.ts';
export { batchBytes, CreditWindow, messageBytes, utf8ByteLength } from './credit.ts';
export type { AckedCursor, SenderOptions, SenderOutput, SenderStats, SenderStreamProgress, SenderStreamState, SenderStreams } from './sender.ts';
export { LinkSender } from './sender.ts';
export type { GapRecord, ReceiverEvent, ReceiverOptions, ReceiverOutput, ReceiverSink, ReceiverStats, ReceiverStreamProgress, ReceiverWrite } from './receiver.ts';
export { LinkReceiver } from './receiver.ts';
export type {
  ConnectionOutput,
  HubConnectionOptions,
  HubConnectionState,
  LeafConnectionOptions,
  LeafConnectionState,
  LeafConnectionStats,
  LinkAction,
  LinkAuthorizer,
  LinkSession,
  SyncFrame,
} from './connection.ts';
export { backoffDelayMs, Heartbeat, HubConnection, isSyncFrame, LeafConnection, negotiateVersion } from './connection.ts';
