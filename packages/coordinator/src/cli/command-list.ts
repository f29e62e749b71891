/**
 * Every command's usage and one-line description, in the order `alexnet --help` lists them: each command module
 * takes its own from here, and main.ts lists them all without loading a module (the kernels, gRPC, the data
 * pipeline) when the line names no command.
 */
export interface ListedCommand {
  readonly command: string;
  readonly describe: string;
}

export const COMMAND_LIST = {
  launch: {
    command: 'launch',
    describe: 'train on this machine: start both workers and the coordinator as child processes (the main command)',
  },
  worker: {
    command: 'worker',
    describe: 'run one tower on one device as a gRPC server (start two: --tower 0 and --tower 1)',
  },
  coordinator: {
    command: 'coordinator',
    describe: 'run training on two workers: handshake, configure, then send every step its batch and log metrics',
  },
  slurm: {
    command: 'slurm',
    describe: 'one task of a Slurm job step of three (srun --ntasks=3): task 0 runs worker 0, task 1 worker 1, task 2 the coordinator',
  },
  params: {
    command: 'params',
    describe: "a preset's layers as a table (kernel, stride, padding, which towers each reads, its shapes on one tower, parameters and multiply-adds), the totals and the model hash",
  },
  inspect: {
    command: 'inspect',
    describe: "pictures of each tower: its kernels, an image's feature maps, predictions on held-out images (from a checkpoint, a model file or a running coordinator), an image's nearest neighbours in a layer's space",
  },
  summary: {
    command: 'summary <run>',
    describe: "a run folder's progress: its sessions (launch, --resume) with their wall time, the time the rest should take at its recent pace, and a table per epoch of training loss and error and the held-out evaluations",
  },
  'export-metrics': {
    command: 'export-metrics <run>',
    describe: "a run folder's metrics (training loss and error, held-out evaluations, learning rate, images/s, each tower's exchange share) as a TensorBoard event file or a CSV",
  },
  predict: {
    command: 'predict <images..>',
    describe:
      "the top-5 classes of image files (JPEG, PNG, WebP, TIFF, GIF; any size: resized and centre-cropped as evaluation does; a folder: the images under it) with their probabilities, from a model file or a run's checkpoint. " +
      'Both towers run in this one process (as the one-process trainer runs them): no worker is started',
  },
  evaluate: {
    command: 'evaluate',
    describe:
      "a trained model (a model file or a run's checkpoint) on a data set's whole held-out split: top-1 and top-5 error and loss, the error of each class, " +
      'the confusion matrix, and every misclassified image (--wrong). Both towers run in this one process: no worker is started',
  },
  features: {
    command: 'features',
    describe:
      "a layer's output for every image of a data set's held-out split, as NumPy arrays (a row per image, both towers' values; its labels; its files): " +
      'for linear probes, t-SNE or nearest neighbours. Both towers run in this one process: no worker is started',
  },
  compare: {
    command: 'compare <a> <b>',
    describe: "how two models of one preset differ, tensor by tensor on each tower: the norms of each and of their difference, the relative change and the cosine; conv1's colour scores",
  },
  dashboard: {
    command: 'dashboard <run>',
    describe: "the dashboard of a run folder, finished or still training (started with or without --ui-port): its curves from metrics.jsonl as they grow, the kernels and feature maps of its latest checkpoint",
  },
  export: {
    command: 'export',
    describe: "a run's checkpoint as a model file to use on its own (alexnet predict --model, PyTorch): weights only, no momentum, with the class names and input normalisation (docs/models.md)",
  },
  verify: {
    command: 'verify <target>',
    describe: "check a run's checkpoints (or one checkpoint or model file): each one's step and whether it is sound (checksums of its header and every tensor, structure, finite values)",
  },
  certs: {
    command: 'certs',
    describe: 'make a local CA and a certificate for each process of a cluster (mutual TLS: --tls DIR)',
  },
} as const satisfies Record<string, ListedCommand>;

export type CommandName = keyof typeof COMMAND_LIST;

/** inspect's sub-commands (inspect-command.ts defines them; test/cli.test.ts checks the two agree). */
export const INSPECT_SUBCOMMANDS = ['kernels', 'activations', 'predictions', 'neighbours'] as const;
