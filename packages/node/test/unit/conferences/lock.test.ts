/**
 * The per-conference lock: changes of one conference run one at a time, in order, so that
 * two changes never build on the same record version; other conferences are not held up.
 */
import { describe, it, expect } from 'vitest'
import type { ConferencePayload, VerifiedRecord } from '@conf-chat/protocol'
import { KeyedLock } from '../../../src/chat/conferences/lock.js'
import { befriend, world, type TestUser } from './fixtures.js'

function deferred (): { promise: Promise<void>, resolve: () => void, reject: (err: Error) => void } {
  let resolve!: () => void
  let reject!: (err: Error) => void
  const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej })
  return { promise, resolve, reject }
}

describe('KeyedLock', () => {
  it('runs the tasks of one key one after the other, in the order queued', async () => {
    const lock = new KeyedLock()
    const steps: string[] = []
    const gate = deferred()
    const first = lock.run('c', async () => { steps.push('1 start'); await gate.promise; steps.push('1 end'); return 1 })
    const second = lock.run('c', async () => { steps.push('2 start'); return 2 })
    const third = lock.run('c', async () => { steps.push('3 start'); return 3 })
    await Promise.resolve()
    await Promise.resolve()
    expect(steps).toEqual(['1 start'])
    expect(lock.busy('c')).toBe(true)
    gate.resolve()
    expect(await Promise.all([first, second, third])).toEqual([1, 2, 3])
    expect(steps).toEqual(['1 start', '1 end', '2 start', '3 start'])
    expect(lock.busy('c')).toBe(false)
  })

  it('a failed task rejects its caller and does not stop the next one', async () => {
    const lock = new KeyedLock()
    const gate = deferred()
    const failing = lock.run('c', async () => { await gate.promise })
    const next = lock.run('c', async () => 'ran')
    gate.reject(new Error('boom'))
    await expect(failing).rejects.toThrow('boom')
    expect(await next).toBe('ran')
  })

  it('tasks of another key do not wait', async () => {
    const lock = new KeyedLock()
    const gate = deferred()
    const held = lock.run('a', async () => { await gate.promise; return 'a' })
    expect(await lock.run('b', async () => 'b')).toBe('b')
    expect(lock.busy('a')).toBe(true)
    gate.resolve()
    expect(await held).toBe('a')
  })
})

describe('conferences under concurrent changes', () => {
  it('two invites at once by the owner both land: the record goes 1 -> 2 -> 3 with every invitee', async () => {
    const w = world()
    const [alice, bob, carol, dave] = ['alice', 'bob', 'carol', 'dave'].map(n => w.user(n)) as [TestUser, TestUser, TestUser, TestUser]
    for (const u of [bob, carol, dave]) befriend(alice, u)
    const { conference } = await alice.conferences.create('team', ['bob'])
    const [toCarol, toDave] = await Promise.all([
      alice.conferences.invite(conference.id, ['carol']),
      alice.conferences.invite(conference.id, ['dave'])
    ])
    expect(toCarol.conference.members).toEqual(['alice', 'bob', 'carol'])
    expect(toDave.conference.members).toEqual(['alice', 'bob', 'carol', 'dave'])
    const record = w.records.stored.get(conference.key) as VerifiedRecord<ConferencePayload>
    expect(record.record.seq).toBe(3)
    expect(record.payload.members.map(m => m.username)).toEqual(['alice', 'bob', 'carol', 'dave'])
    expect((await alice.conferences.members(conference.id)).members.map(m => m.username)).toEqual(['alice', 'bob', 'carol', 'dave'])
  })
})
