/**
 * A stand-in for ChatNode with the calls the screens make: each call is recorded, and
 * answers with what the test put in `answers` (a value, or a function of the arguments).
 * `emit()` dispatches an event as the core library would.
 */
import type { TuiNode } from '../../src/tui/context.js'

export interface Call { method: string, args: unknown[] }

type Answer = unknown | ((...args: any[]) => unknown)

export class FakeNode extends EventTarget {
  readonly calls: Call[] = []
  readonly answers = new Map<string, Answer>()
  session: any = undefined
  readReceipts = true
  peer = { joined: true, waitJoined: async () => {} }

  constructor (answers: Record<string, Answer> = {}) {
    super()
    for (const [k, v] of Object.entries(answers)) this.answers.set(k, v)
    const methods = ['login', 'register', 'logout', 'changePassword', 'whoami', 'users', 'friends', 'friendRequests',
      'addFriend', 'acceptFriend', 'rejectFriend', 'removeFriend', 'sendMessage', 'history', 'markRead', 'presenceOf',
      'conferences', 'createConference', 'conferenceMembers', 'sendConferenceMessage', 'inviteToConference',
      'leaveConference', 'conferenceHistory', 'markConferenceRead']
    for (const method of methods) {
      (this as any)[method] = (...args: unknown[]) => {
        this.calls.push({ method, args })
        for (const w of [...this.waiters]) w()
        const answer = (): unknown => {
          const a = this.answers.get(method)
          return typeof a === 'function' ? (a as (...a: unknown[]) => unknown)(...args) : a
        }
        // like ChatNode: whoami() answers at once, the others are async (a throw is a rejection)
        return method === 'whoami' ? answer() : (async () => answer())()
      }
    }
  }

  emit (type: string, detail: unknown): void {
    this.dispatchEvent(new CustomEvent(type, { detail }))
  }

  private readonly waiters = new Set<() => void>()

  /** Resolves once `method` has been called `n` times. */
  async waitForCalls (method: string, n: number): Promise<void> {
    await new Promise<void>(resolve => {
      const check = (): void => { if (this.callsOf(method).length >= n) { this.waiters.delete(check); resolve() } }
      this.waiters.add(check)
      check()
    })
  }

  callsOf (method: string): unknown[][] {
    return this.calls.filter(c => c.method === method).map(c => c.args)
  }

  asNode (): TuiNode { return this as unknown as TuiNode }
}
