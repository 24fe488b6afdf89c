/**
 * Preprocessing worker (a plain worker_threads Worker owned by preprocess-pool.ts): encoded image
 * bytes → a model's input tensor (image-to-tensor.ts), so that under load neither the HTTP event
 * loop nor a busy inference worker waits for it: while one request's image is prepared, the
 * inference workers run the batch before it (a two-stage pipeline). Several tasks may be in
 * progress at once (their decodes overlap); each answers with its tensor, transferred, or the
 * coded error of its image.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { imageToTensor, itemError } from '../preprocess/image-to-tensor.js'
import { MessageBatch } from './message-batch.js'
import {
  CANCEL_TASK,
  CRASH_TASK,
  PREPARE_BATCH,
  type CancelTask,
  type PrepareBatch,
  type PrepareReply,
  type PrepareTask,
} from './worker-protocol.js'

/** Replies finished in one turn go back as one message. */
const replies = new MessageBatch<PrepareReply>((batch, transfer) => {
  parentPort?.postMessage(batch, transfer)
})

/** Tasks in progress, by id: the pool cancels one (its client has gone) through its controller. */
const inProgress = new Map<number, AbortController>()

async function prepare(task: PrepareTask): Promise<void> {
  const begin = performance.now()
  const cancel = new AbortController()
  inProgress.set(task.id, cancel)
  let reply: PrepareReply
  try {
    const tensor = await imageToTensor(
      { ...task.item, deadline: task.deadline },
      task.contract,
      cancel.signal,
    )
    reply = { id: task.id, ok: true, tensor, preprocessMs: performance.now() - begin }
    replies.push(reply, [tensor.buffer as ArrayBuffer])
  } catch (error) {
    reply = { id: task.id, ok: false, error: itemError(error), preprocessMs: performance.now() - begin }
    replies.push(reply)
  } finally {
    inProgress.delete(task.id)
  }
}

const { faultInjection } = (workerData ?? {}) as { faultInjection?: boolean }

parentPort?.on('message', (message: { kind?: unknown }) => {
  if (message.kind === PREPARE_BATCH) for (const task of (message as PrepareBatch).tasks) void prepare(task)
  else if (message.kind === CANCEL_TASK) inProgress.get((message as CancelTask).id)?.abort()
  else if (message.kind === CRASH_TASK && faultInjection === true) {
    // Thrown from a timer: an uncaught exception outside any task, which kills the thread.
    setTimeout(() => {
      throw new Error('injected preprocessing worker crash')
    }, 0)
  }
})
