import { describe, it, expect } from 'vitest'
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'

const root = fileURLToPath(new URL('..', import.meta.url))

// No Docker engine runs here: Debian's docker-compose checks and resolves the file.
describe('docker-compose.yml', () => {
  it('is valid and runs a supernode and three peers that bootstrap from it by name', () => {
    const out = execFileSync('docker-compose', ['-f', 'docker-compose.yml', 'config'], { cwd: root, encoding: 'utf8' })
    const config = parse(out)
    expect(Object.keys(config.services).sort()).toEqual(['alice', 'bob', 'carol', 'supernode'])
    expect(config.services.supernode.environment.CONF_CHAT_DATA).toBe('/data/supernode')
    expect(config.services.supernode.volumes).toEqual(['supernode-data:/data:rw'])
    for (const name of ['alice', 'bob', 'carol']) {
      const s = config.services[name]
      expect(s.environment.CONF_CHAT_BOOTSTRAP).toBe('/dns4/supernode/tcp/4300')
      expect(s.stdin_open).toBe(true)
      expect(s.tty).toBe(true)
      expect(Object.keys(s.networks)).toEqual(['chat'])
    }
    expect(config.networks.chat.driver).toBe('bridge')
  })
})
