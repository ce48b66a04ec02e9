/**
 * The status file (`--status-file`, `CONF_CHAT_STATUS_FILE`): one line that says where
 * the program stands, for a container's HEALTHCHECK or a supervisor to read without
 * talking to the peer. The first word is the state:
 *
 *   starting   the program runs, the peer is not in the network yet
 *   joined     in the network (a supernode: listening, and joined to its bootstrap
 *              peers if it has any)
 *   joining    it lost every connection, or no bootstrap peer answered yet; it retries
 *   stopping   it is stopping
 *
 * then the peer id and, for `joined`, the address it joined through. Each write replaces
 * the file in one step (a reader never sees half a line). The file is removed when the
 * program ends; one left behind by a crash says `starting` again at the next start.
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'

export type ProgramState = 'starting' | 'joined' | 'joining' | 'stopping'

export class StatusFile {
  private writing: Promise<void> = Promise.resolve()
  private ended = false

  constructor (readonly path: string) {}

  /** Record `state`; writes are queued, so the file always ends with the last state set. */
  async set (state: ProgramState, ...details: string[]): Promise<void> {
    if (this.ended) return
    const line = [state, ...details].join(' ') + '\n'
    this.writing = this.writing.then(async () => {
      if (this.ended) return
      await mkdir(dirname(this.path), { recursive: true })
      const tmp = `${this.path}.${process.pid}.tmp`
      await writeFile(tmp, line)
      await rename(tmp, this.path)
    }).catch(() => {}) // a status that cannot be written must not stop the peer
    await this.writing
  }

  /** Resolves when every state set so far is in the file. */
  async flushed (): Promise<void> {
    await this.writing
  }

  /** Remove the file; later `set` calls do nothing. */
  async remove (): Promise<void> {
    await this.writing
    this.ended = true
    await rm(this.path, { force: true }).catch(() => {})
  }
}

/** What `followPeer` needs of a peer: its id and its network events (ChatPeer's). */
export interface StatusSource {
  peerId: { toString: () => string }
  addEventListener: (type: 'network:joined' | 'network:lost' | 'network:unreachable', listener: (evt: any) => void) => void
}

/** Keep `status` in step with the peer's network events from now on. */
export function followPeer (status: StatusFile, peer: StatusSource): void {
  const id = (): string => peer.peerId.toString()
  peer.addEventListener('network:joined', ({ detail }) => { void status.set('joined', id(), String(detail?.via ?? '')) })
  peer.addEventListener('network:lost', () => { void status.set('joining', id()) })
  peer.addEventListener('network:unreachable', () => { void status.set('joining', id()) })
}
