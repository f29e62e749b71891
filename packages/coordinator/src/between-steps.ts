/**
 * Tasks that need the workers between steps (Coordinator.betweenSteps: GetParameters, inspection, which a worker
 * refuses during a step), e.g. from the dashboard. While a run goes on, or a call on both workers is in flight,
 * a task waits: the run loop runs the waiting tasks after the steps in flight (and the evaluation or checkpoint
 * due) and before it sends the next one, so training waits for them once. Otherwise a task starts at once; the
 * tasks started so run one after the other, and a run starts its first step after them.
 */
export class BetweenStepTasks {
  private readonly waiting: (() => Promise<void>)[] = [];
  /** The tasks started outside a run, one after the other. */
  private outside: Promise<unknown> = Promise.resolve();

  /** `busy`: whether a run goes on or a call on both workers is in flight (a task then waits). */
  constructor(private readonly busy: () => boolean) {}

  /** Whether a task waits (a run then queues no step: queued steps). */
  get pending(): boolean {
    return this.waiting.length > 0;
  }

  /** Settles when the tasks started outside a run have run. */
  get settled(): Promise<unknown> {
    return this.outside;
  }

  add<T>(task: () => Promise<T>): Promise<T> {
    if (!this.busy()) {
      const p = this.outside.then(task);
      this.outside = p.catch(() => {});
      return p;
    }
    return new Promise<T>((resolve, reject) => this.waiting.push(() => task().then(resolve, reject)));
  }

  /** Runs the waiting tasks, in order (the run loop, between two steps). */
  async runWaiting(): Promise<void> {
    for (let f = this.waiting.shift(); f; f = this.waiting.shift()) await f();
  }

  /** The waiting tasks run next, after those started outside a run (after a call outside a run, at a run's end). */
  flush(): void {
    this.outside = this.outside.then(() => this.runWaiting()).catch(() => {});
  }
}
