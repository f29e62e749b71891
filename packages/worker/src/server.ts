/** The worker's gRPC server: the device, the Worker and Peer services on one port, credentials checked first. */
import * as grpc from '@grpc/grpc-js';
import { Device } from '@alexnet-mp/core';
import { formatAddress, protocol } from './protocol.js';
import { serverChannelOptions } from './channel-options.js';
import { RefusalLog, listenSecurely, serverInterceptors } from './auth.js';
import { TowerWorker } from './worker.js';
import type { WorkerOptions } from './worker-options.js';
import { peerService } from './peer-service.js';
import { DEFAULT_CONNECTION_LIMITS, OpenConnections, idleServerOptions } from './connection-limits.js';

export interface RunningWorker {
  readonly address: string;
  readonly port: number;
  readonly worker: TowerWorker;
  close(): Promise<void>;
}

/** Creates the device, binds the server and starts serving. */
export async function startWorker(o: WorkerOptions): Promise<RunningWorker> {
  const device = await Device.create(o.backend, o.fallback ?? { onFallback: 'throw' }, { device: o.device, threads: o.threads });
  const connections = new OpenConnections();
  const worker = new TowerWorker(o, device, connections);
  // calls without the credentials are refused (and logged) before they reach a handler
  const refusals = new RefusalLog(o.log ?? (() => {}));
  const limits = o.connectionLimits ?? DEFAULT_CONNECTION_LIMITS;
  const server = new grpc.Server({ ...serverChannelOptions(worker.limitBytes), ...idleServerOptions(limits), interceptors: serverInterceptors(o.security, refusals) });
  const { Worker, Peer } = protocol();
  server.addService(Worker.service, {
    Handshake: worker.handshake,
    Configure: worker.configure,
    Step: worker.step,
    Evaluate: worker.evaluate,
    Status: worker.status,
    GetParameters: worker.getParameters,
    SetParameters: worker.setParameters,
    GetActivations: worker.getActivations,
    Release: worker.release,
    StreamActivations: worker.streamActivations,
  });
  server.addService(Peer.service, peerService(worker));
  const host = o.host ?? '127.0.0.1';
  const { port, close } = await listenSecurely(server, host, o.port ?? 0, o.security, refusals, limits, connections);
  const address = formatAddress({ host, port });
  return {
    address,
    port,
    worker,
    close: () => {
      worker.shutdown();
      return close();
    },
  };
}
