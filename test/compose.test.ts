import { describe, it, expect } from 'vitest'
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'

const root = fileURLToPath(new URL('..', import.meta.url))

// Debian's docker-compose checks and resolves the file, without an engine (the demo itself
// runs on one in test/docker/compose-demo.test.ts).
describe('docker-compose.yml', () => {
  it('is valid and runs a supernode and three peers that bootstrap from it by name; a throwaway guest only when asked', () => {
    const out = execFileSync('docker-compose', ['-f', 'docker-compose.yml', 'config'], { cwd: root, encoding: 'utf8', env: { ...process.env, BASE_IMAGE: '' } })
    const config = parse(out)
    expect(Object.keys(config.services).sort()).toEqual(['alice', 'bob', 'carol', 'guest', 'supernode'])
    expect(config.services.guest.profiles).toEqual(['guest'])
    expect(config.services.guest.volumes).toBeUndefined() // its data goes with its container
    expect(config.services.supernode.build.args.BASE_IMAGE).toBe('node:22-bookworm-slim')
    expect(config.services.supernode.environment.CONF_CHAT_DATA).toBe('/data/supernode')
    expect(config.services.supernode.volumes).toEqual(['supernode-data:/data:rw'])
    for (const name of ['alice', 'bob', 'carol', 'guest']) {
      const s = config.services[name]
      expect(s.environment.CONF_CHAT_BOOTSTRAP).toBe('/dns4/supernode/tcp/4300')
      expect(s.stdin_open).toBe(true)
      expect(s.tty).toBe(true)
      expect(Object.keys(s.networks)).toEqual(['chat'])
    }
    expect(config.networks.chat.driver).toBe('bridge')
  })
})
