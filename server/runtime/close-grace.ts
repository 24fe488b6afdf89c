/**
 * Bounded waits for closing worker pools. A replaced zoo generation's worker that never answers,
 * or whose thread never stops (native code that does not return to the event loop), must not hold
 * a reload or a shutdown forever: past the grace period the caller goes on and unrefs the worker.
 */
import type { Worker } from 'node:worker_threads'

export const CLOSE_GRACE_MS = 5000

/** Resolves when `work` settles or CLOSE_GRACE_MS have passed; the timer never keeps the process alive. */
export async function withGrace(work: Promise<unknown>): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const grace = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, CLOSE_GRACE_MS)
    timer.unref()
  })
  await Promise.race([work.then(noop, noop), grace])
  clearTimeout(timer)
}

/** Terminates every worker, waiting at most the grace period; a worker still running is unref'd. */
export async function terminateAll(workers: readonly Worker[]): Promise<void> {
  await withGrace(Promise.all(workers.map((worker) => worker.terminate())))
  for (const worker of workers) worker.unref()
}

function noop(): void {}
