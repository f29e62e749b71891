/** A wait that would otherwise be silent: `say` is called once if `work` is still going after `afterMs`. */
export async function saidIfSlow<T>(work: Promise<T>, say: () => void, afterMs = 2000): Promise<T> {
  const timer = setTimeout(say, afterMs);
  try {
    return await work;
  } finally {
    clearTimeout(timer);
  }
}
