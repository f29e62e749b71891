/**
 * HTTP/2 flow-control windows for every gRPC channel and server of the program.
 *
 * A receiver lets its sender have a window of bytes in flight; HTTP/2's default is 64 KiB, for each stream and
 * for the whole connection. With 64 KiB in flight a link carries at most 64 KiB per round trip: 3.2 MB/s at
 * 20 ms, which is what a step's crossings (4.4 MiB at the cifar preset, batch 64; 57 MiB at the paper preset,
 * batch 128) would travel at between two hosts. A 16 MiB window keeps a 5 Gb/s link busy at 20 ms round trips.
 * It costs no memory up front; a receiver may then hold up to 16 MiB of a connection's data that it has not read yet.
 *
 * The option is grpc-js's own `grpc-node.flow_control_window`; on a server it needs the project's patch to
 * grpc-js (patches/README.md), which makes the server honour it as the client transport already does.
 */
import type * as grpc from '@grpc/grpc-js';

export const FLOW_CONTROL_WINDOW_BYTES = 16 * 1024 * 1024;

/** For channels and servers alike. */
export const flowControlOptions: grpc.ChannelOptions = { 'grpc-node.flow_control_window': FLOW_CONTROL_WINDOW_BYTES };
