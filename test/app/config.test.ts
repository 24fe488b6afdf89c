import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ConfigError, defaultThreads, FIXTURE_ZOO_DIR, helpText, resolveConfig } from '../../server/config.js'

describe('config', () => {
  it('defaults match the documented values', () => {
    const { config, help } = resolveConfig()
    assert.equal(help, false)
    assert.equal(config.port, 8080)
    assert.equal(config.host, '0.0.0.0')
    assert.equal(config.executionProvider, 'auto')
    assert.equal(config.maxBodyBytes, 8 * 1024 * 1024)
    assert.equal(config.logLevel, 'info')
  })

  it('environment overrides defaults and flags override the environment', () => {
    const { config } = resolveConfig({
      env: { PORT: '9000', EXECUTION_PROVIDER: 'cpu', LOG_LEVEL: 'warn', ZOO_DIR: FIXTURE_ZOO_DIR },
      argv: ['--port', '9001', '--worker-threads=3', '--intra-op-threads', '2'],
    })
    assert.equal(config.port, 9001)
    assert.equal(config.executionProvider, 'cpu')
    assert.equal(config.logLevel, 'warn')
    assert.equal(config.workerThreads, 3)
    assert.equal(config.intraOpThreads, 2)
    assert.equal(config.zooDir, FIXTURE_ZOO_DIR)
  })

  it('rejects bad values with the key, its variable and its flag named', () => {
    assert.throws(
      () => resolveConfig({ env: { EXECUTION_PROVIDER: 'tpu' } }),
      (error: unknown) =>
        error instanceof ConfigError &&
        /executionProvider \(EXECUTION_PROVIDER \/ --execution-provider\)/.test(error.message),
    )
    assert.throws(() => resolveConfig({ env: { PORT: '80x' } }), /PORT: expected an integer, got "80x"/)
    assert.throws(() => resolveConfig({ argv: ['--port', '70000'] }), /port \(PORT \/ --port\)/)
    assert.throws(() => resolveConfig({ argv: ['--worker-threads', '0'] }), /workerThreads/)
    assert.throws(() => resolveConfig({ argv: ['--no-such-flag'] }), ConfigError)
  })

  it('--help is reported and the help text lists every key', () => {
    assert.equal(resolveConfig({ argv: ['--help'] }).help, true)
    const text = helpText()
    for (const variable of [
      'HOST',
      'PORT',
      'ZOO_DIR',
      'EXECUTION_PROVIDER',
      'WORKER_THREADS',
      'MAX_IMAGE_PIXELS',
    ]) {
      assert.match(text, new RegExp(variable))
    }
  })

  it('thread defaults keep workers × intra-op threads near the core count', () => {
    for (const cores of [1, 2, 3, 4, 8, 16, 64]) {
      const { workerThreads, intraOpThreads } = defaultThreads(cores)
      assert.ok(workerThreads >= 1 && intraOpThreads >= 1)
      assert.ok(workerThreads * intraOpThreads <= Math.max(cores, 1), `cores=${cores}`)
      assert.ok(workerThreads * intraOpThreads >= cores / 2, `cores=${cores}`)
    }
  })
})
