/**
 * Channel and server options that notice a lost process: HTTP/2 keepalive
 * pings (a peer that stops answering them, e.g. a machine that lost power or
 * its network, fails every call on that connection), and short reconnect
 * backoffs so that a worker that comes back is reached within seconds.
 *
 * A process that is killed closes its sockets: its calls fail at once
 * without keepalives; these are for the host that vanishes silently.
 */
import type * as grpc from '@grpc/grpc-js';

/**
 * A ping every 30 s on a connection; no answer within 2 minutes drops it (its calls fail with UNAVAILABLE).
 * Generous: a worker computing on CPU answers pings only between kernels (its event loop is busy during one),
 * and a dropped connection in the middle of a long step would be taken for a lost worker. A hung worker is
 * noticed sooner by the coordinator's step deadlines (health.ts), which follow the step times seen.
 */
export const KEEPALIVE_TIME_MS = 30_000;
export const KEEPALIVE_TIMEOUT_MS = 120_000;
/** Reconnect backoff: grpc-js's default grows to 120 s, too slow to notice a worker that is back. */
export const MAX_RECONNECT_BACKOFF_MS = 5_000;

/** For clients (the coordinator's channels to the workers, a worker's channel to its peer). */
export const clientKeepaliveOptions: grpc.ChannelOptions = {
  'grpc.keepalive_time_ms': KEEPALIVE_TIME_MS,
  'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
  // idle connections too: a worker waits for its peer's tensor with no call of its own in flight
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.initial_reconnect_backoff_ms': 500,
  'grpc.max_reconnect_backoff_ms': MAX_RECONNECT_BACKOFF_MS,
};

/** For the worker's server: it pings its callers, so a coordinator that vanished mid-step cancels the step. */
export const serverKeepaliveOptions: grpc.ChannelOptions = {
  'grpc.keepalive_time_ms': KEEPALIVE_TIME_MS,
  'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
};
