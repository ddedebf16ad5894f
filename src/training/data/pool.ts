/** A small worker pool: runs `worker` over items with at most `concurrency` in flight, in input order of start. */
export async function runPool<T>(
  items: readonly T[],
  concurrency: number,
  worker: (item: T, index: number) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  let next = 0;
  const lanes = Math.max(1, Math.min(Math.floor(concurrency) || 1, items.length));
  const lane = async () => {
    while (next < items.length) {
      if (signal?.aborted) return;
      const i = next++;
      await worker(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: lanes }, lane));
}
