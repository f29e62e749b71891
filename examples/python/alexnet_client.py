#!/usr/bin/env python3
"""A coordinator for two alexnet workers, written from proto/ alone.

It drives a short run: Handshake and Configure on both workers, a few training Steps (both workers at
once), one Evaluate, and GetParameters (chunks put back together), printing one JSON object a line.
The stubs are generated from proto/alexnet/v1/*.proto at start with grpc_tools (Debian: apt-get
install python3-grpcio python3-grpc-tools). See proto/README.md, "Writing a coordinator or a tool
in another language".

    python3 examples/python/alexnet_client.py --workers 127.0.0.1:50051,127.0.0.1:50052 \
        --preset tiny --model-hash $(alexnet params --preset tiny | grep -o '[0-9a-f]\\{64\\}') --steps 3
"""
import argparse
import array
import json
import os
import random
import sys
import tempfile
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = os.path.join(HERE, '..', '..', 'proto')
FILES = ['alexnet/v1/common.proto', 'alexnet/v1/worker.proto', 'alexnet/v1/peer.proto', 'alexnet/v1/coordinator.proto']
# the input of each preset: channels, size, classes (proto/README.md; packages/core/src/model/presets.ts)
PRESETS = {'tiny': (3, 16, 4), 'cifar': (3, 32, 10), 'paper': (3, 224, 1000)}


class UserError(Exception):
    """A mistake of the caller: printed as one line, exit status 2."""


def load_stubs(out_dir):
    """Generates the Python stubs of alexnet.v1 into out_dir and imports them."""
    try:
        from grpc_tools import protoc
    except ImportError as e:
        raise UserError(f'{e}: install grpcio and grpcio-tools (Debian: apt-get install python3-grpcio python3-grpc-tools)')
    args = ['protoc', f'-I{PROTO}', f'--python_out={out_dir}', f'--grpc_python_out={out_dir}'] + [os.path.join(PROTO, f) for f in FILES]
    if protoc.main(args) != 0:
        raise UserError(f'grpc_tools.protoc could not compile {PROTO}')
    sys.path.insert(0, out_dir)
    from alexnet.v1 import common_pb2, worker_pb2, worker_pb2_grpc
    return common_pb2, worker_pb2, worker_pb2_grpc


def floats(tensor):
    """A Tensor's data as Python floats (little-endian float32)."""
    a = array.array('f')
    a.frombytes(tensor.data)
    if sys.byteorder == 'big':
        a.byteswap()
    return a


class Batches:
    """Training batches: read from --data (each batch uint8 images [3][N][S][S], then N uint32 labels, little-endian), or random."""

    def __init__(self, path, preset, seed):
        self.channels, self.size, self.classes = PRESETS[preset]
        self.file = open(path, 'rb') if path else None
        self.rng = random.Random(seed)

    def next(self, n):
        image_bytes = self.channels * n * self.size * self.size
        if self.file:
            images = self.file.read(image_bytes)
            labels = array.array('I')
            raw = self.file.read(4 * n)
            if len(images) != image_bytes or len(raw) != 4 * n:
                raise UserError(f'{self.file.name}: no batch of {n} images left')
            labels.frombytes(raw)
            if sys.byteorder == 'big':
                labels.byteswap()
            return images, list(labels)
        images = bytes(self.rng.randrange(256) for _ in range(image_bytes))
        return images, [self.rng.randrange(self.classes) for _ in range(n)]


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--workers', required=True, help='HOST:PORT of tower 0, then of tower 1, comma-separated')
    p.add_argument('--preset', default='tiny', choices=sorted(PRESETS))
    p.add_argument('--model-hash', required=True, help='the preset\'s model hash, as `alexnet params --preset NAME` prints it')
    p.add_argument('--batch', type=int, default=8)
    p.add_argument('--steps', type=int, default=3)
    p.add_argument('--seed', type=int, default=1)
    p.add_argument('--lr', type=float, default=0.01)
    p.add_argument('--momentum', type=float, default=0.9)
    p.add_argument('--weight-decay', type=float, default=0.0005)
    p.add_argument('--eval-batch', type=int, default=8, help='images of the one evaluation after the steps')
    p.add_argument('--data', help='batches to train on, then the evaluation batch (format: see Batches); default: random images')
    p.add_argument('--max-chunk-bytes', type=int, default=0, help='GetParametersRequest.max_chunk_bytes (0: the worker\'s 1 MiB)')
    p.add_argument('--save-parameters', help='a folder to write each tensor to, as raw float32: tower0-conv1.w.f32 ...')
    p.add_argument('--token-file', help='the shared token of workers started with --token-file')
    p.add_argument('--timeout', type=float, default=120.0, help='seconds for each call')
    a = p.parse_args()

    addresses = a.workers.split(',')
    if len(addresses) != 2:
        raise UserError(f'--workers: two addresses, tower 0 first (got {a.workers!r})')
    metadata = []
    if a.token_file:
        try:
            with open(a.token_file) as f:
                metadata = [('authorization', 'Bearer ' + f.readline().strip())]
        except OSError as e:
            raise UserError(f'--token-file {a.token_file}: {e.strerror}')

    try:
        import grpc
    except ImportError as e:
        raise UserError(f'{e}: install grpcio and grpcio-tools (Debian: apt-get install python3-grpcio python3-grpc-tools)')
    with tempfile.TemporaryDirectory(prefix='alexnet-stubs-') as stubs:
        common_pb2, worker_pb2, worker_pb2_grpc = load_stubs(stubs)
        channels = [grpc.insecure_channel(addr) for addr in addresses]  # gRPC's default limits: 4 MiB received
        workers = [worker_pb2_grpc.WorkerStub(ch) for ch in channels]
        call = dict(metadata=metadata, timeout=a.timeout)

        def both(method, request):
            """The same call on both workers at once (each waits for the other's tensors), then both replies."""
            futures = [getattr(w, method).future(request, **call) for w in workers]
            return [f.result() for f in futures]

        def say(**event):
            print(json.dumps(event), flush=True)

        doing = 'starting'
        try:
            run_id = 'python-' + uuid.uuid4().hex[:12]
            model = common_pb2.ModelIdentity(protocol_version=1, preset=a.preset, model_hash=a.model_hash)
            for t, w in enumerate(workers):
                doing = f'Handshake with tower {t} at {addresses[t]}'
                r = w.Handshake(worker_pb2.HandshakeRequest(model=model, tower=t, peer_address=addresses[1 - t], run_id=run_id), wait_for_ready=True, **call)
                say(event='handshake', tower=r.tower, backend=r.backend, features=list(r.features), max_batch=r.max_batch)
            doing = 'Configure'
            # both at once: each worker says Hello to the other while being configured
            configured = [w.Configure.future(worker_pb2.ConfigureRequest(run_id=run_id, batch=a.batch, seed=a.seed, peer_address=addresses[1 - t]), **call) for t, w in enumerate(workers)]
            for f in configured:
                r = f.result()
                say(event='configure', tower=r.tower, parameters=r.parameters, peer=r.peer_address)

            data = Batches(a.data, a.preset, a.seed)
            hyper = common_pb2.SgdHyper(lr=a.lr, momentum=a.momentum, weight_decay=a.weight_decay, no_bias_decay=True)
            for step in range(a.steps):
                doing = f'Step {step}'
                images, labels = data.next(a.batch)
                replies = both('Step', worker_pb2.StepRequest(run_id=run_id, step=step, images=images, labels=labels, hyper=hyper))
                r0 = replies[0]
                say(event='step', step=step, loss=r0.loss, top1=r0.correct, top5=r0.correct_top5, batch=r0.batch,
                    sent_bytes=[sum(c.forward_sent_bytes + c.backward_sent_bytes for c in r.traffic) for r in replies])

            doing = 'Evaluate'
            images, labels = data.next(a.eval_batch)
            replies = both('Evaluate', worker_pb2.EvaluateRequest(run_id=run_id, evaluation=0, step=a.steps, images=images, labels=labels))
            logits = replies[0].logits
            say(event='evaluate', loss=replies[0].loss, top1=replies[0].correct, top5=replies[0].correct_top5, logits_shape=list(logits.shape))

            for t, w in enumerate(workers):
                doing = f'GetParameters of tower {t}'
                tensors = {}
                next_row = {}
                messages = 0
                for m in w.GetParameters(worker_pb2.GetParametersRequest(run_id=run_id, include_momentum=False, max_chunk_bytes=a.max_chunk_bytes), **call):
                    messages += 1
                    key = f'{m.layer}.{m.kind}'
                    # a tensor over the chunk size comes as chunks of whole rows, in order: append them
                    if m.row_offset != next_row.get(key, 0):
                        raise UserError(f'tower {t} sent {key} rows from {m.row_offset}, expected {next_row.get(key, 0)}')
                    next_row[key] = m.row_offset + m.tensor.shape[0]
                    tensors.setdefault(key, array.array('f')).extend(floats(m.tensor))
                say(event='parameters', tower=t, tensors=len(tensors), messages=messages, floats=sum(len(x) for x in tensors.values()))
                if a.save_parameters:
                    os.makedirs(a.save_parameters, exist_ok=True)
                    for key, x in tensors.items():
                        with open(os.path.join(a.save_parameters, f'tower{t}-{key}.f32'), 'wb') as f:
                            if sys.byteorder == 'big':
                                x.byteswap()
                            f.write(x.tobytes())
        except grpc.RpcError as e:
            raise UserError(f'{doing}: {e.code().name}: {e.details()}')
        finally:
            for ch in channels:
                ch.close()


if __name__ == '__main__':
    try:
        main()
    except UserError as e:
        print(f'alexnet_client: {e}', file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
