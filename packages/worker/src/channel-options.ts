/**
 * The options of the workers' gRPC channels and servers, in one place: the message size limit of the run
 * (protocol.ts), keepalives that notice a vanished host (keepalive.ts) and 16 MiB flow-control windows
 * (flow-control.ts).
 */
import type * as grpc from '@grpc/grpc-js';
import { sizeLimitOptions } from './protocol.js';
import { clientKeepaliveOptions, serverKeepaliveOptions } from './keepalive.js';
import { flowControlOptions } from './flow-control.js';

/** A channel to a worker: the coordinator's, or a worker's to its peer. */
export const clientChannelOptions = (limitBytes: number): grpc.ChannelOptions => ({ ...sizeLimitOptions(limitBytes), ...clientKeepaliveOptions, ...flowControlOptions });

/** A worker's server. */
export const serverChannelOptions = (limitBytes: number): grpc.ServerOptions => ({ ...sizeLimitOptions(limitBytes), ...serverKeepaliveOptions, ...flowControlOptions });
