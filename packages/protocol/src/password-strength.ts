/**
 * How hard a password is to guess, by zxcvbn-ts: common passwords, English words and
 * names, keyboard walks, dates, repeats and sequences, and the user's own name and
 * username, each priced in guesses.
 *
 * Its dictionaries weigh ~35 MiB once loaded, which an idle peer should not carry for a
 * check it makes once at registration. So they are loaded in a worker thread, from
 * node_modules (the program bundles leave them out: scripts/build-bundles.mjs), and the
 * worker ends `PASSWORD_CHECKER_IDLE_MS` after its last check; it never keeps the process alive.
 */
import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'

/** zxcvbn's score, 0-4: 3 is "safely unguessable" against a slow hash (10^8 guesses or more). */
export const MIN_PASSWORD_SCORE = 3

export interface PasswordStrength {
  score: number
  /** log10 of the guesses zxcvbn expects an attacker to need. */
  guessesLog10: number
  /** Why it is weak ('' when zxcvbn has nothing to say). */
  warning: string
  suggestions: string[]
}

/** The worker ends this long after its last check. */
export const PASSWORD_CHECKER_IDLE_MS = 10_000

// The worker's program (CommonJS: `eval` workers are scripts). The packages are resolved
// by the parent, so that they are found wherever this file runs from (a bundle or dist).
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const { ZxcvbnFactory } = require(workerData.core)
const common = require(workerData.common)
const en = require(workerData.en)
const zxcvbn = new ZxcvbnFactory({
  dictionary: { ...common.dictionary, ...en.dictionary },
  graphs: common.adjacencyGraphs,
  translations: en.translations
})
parentPort.on('message', ({ id, password, userInputs }) => {
  const r = zxcvbn.check(password, userInputs)
  parentPort.postMessage({ id, score: r.score, guessesLog10: r.guessesLog10, warning: r.feedback.warning ?? '', suggestions: r.feedback.suggestions })
})
`

interface Pending { resolve: (s: PasswordStrength) => void, reject: (err: Error) => void }

/** The checks each worker has in hand: a worker that ends fails its own, never a newer worker's. */
const pendingOf = new WeakMap<Worker, Map<number, Pending>>()

let worker: Worker | undefined
let idle: NodeJS.Timeout | undefined
let nextId = 0

function startWorker (): Worker {
  const require = createRequire(import.meta.url)
  const w = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: {
      core: require.resolve('@zxcvbn-ts/core'),
      common: require.resolve('@zxcvbn-ts/language-common'),
      en: require.resolve('@zxcvbn-ts/language-en')
    }
  })
  const pending = new Map<number, Pending>()
  pendingOf.set(w, pending)
  w.on('message', (m: PasswordStrength & { id: number }) => {
    const p = pending.get(m.id)
    pending.delete(m.id)
    const { id, ...strength } = m
    p?.resolve(strength)
  })
  const fail = (err: Error): void => {
    if (worker === w) worker = undefined
    for (const p of pending.values()) p.reject(err)
    pending.clear()
  }
  w.on('error', fail)
  w.on('exit', () => { fail(new Error('the password checker stopped')) })
  return w
}

/** zxcvbn's verdict on `password`; `userInputs` (name, username) count as known words. */
export async function passwordStrength (password: string, userInputs: string[] = []): Promise<PasswordStrength> {
  clearTimeout(idle)
  worker ??= startWorker()
  const w = worker
  const pending = pendingOf.get(w)!
  const id = nextId++
  try {
    return await new Promise<PasswordStrength>((resolve, reject) => {
      pending.set(id, { resolve, reject })
      w.ref() // held open while a check is pending, and only then
      w.postMessage({ id, password, userInputs })
    })
  } finally {
    if (pending.size === 0 && worker === w) {
      w.unref()
      idle = setTimeout(() => { if (worker === w) { worker = undefined; void w.terminate() } }, PASSWORD_CHECKER_IDLE_MS).unref()
    }
  }
}
