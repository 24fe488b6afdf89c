/**
 * docs/ecosystem.md stays true to the code: its settings table is the generated one and lists
 * every setting (also listed by --help), and it documents every metric the server exports and
 * every Open Inference Protocol route.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { helpText, KEYS } from '../server/config.js'
import { ServerMetrics } from '../server/metrics.js'
import {
  SETTINGS_DOC,
  settingsTable,
  TABLE_END,
  TABLE_START,
  withSettingsTable,
} from '../scripts/settings-table.js'
import { ROOT } from './helper.js'

const doc = await readFile(join(ROOT, SETTINGS_DOC), 'utf8')

describe('docs/ecosystem.md', () => {
  it('holds the current settings table: one row per setting, each also in --help', () => {
    assert.equal(withSettingsTable(doc), doc, 'run `npm run generate`')
    const table = settingsTable()
    assert.equal(table.split('\n').length, KEYS.length + 2)
    const help = helpText()
    for (const spec of KEYS) {
      assert.ok(table.includes(`| \`${spec.env}\` | \`--${spec.flag}\` |`), spec.env)
      assert.ok(help.includes(`--${spec.flag} <value>`) && help.includes(spec.env), spec.env)
    }
  })

  it('refuses a document without the table markers', () => {
    assert.throws(() => withSettingsTable('# no markers'), /must contain the markers/)
    assert.ok(doc.includes(TABLE_START) && doc.includes(TABLE_END))
  })

  it('documents every exported alphanet_* metric', async () => {
    const metrics = new ServerMetrics({ modelNames: () => [], modelReadiness: () => [] })
    const names = [...(await metrics.scrape()).matchAll(/^# TYPE (alphanet_\w+) /gm)].map((m) => m[1]!)
    assert.ok(names.length >= 10)
    for (const name of names) assert.ok(doc.includes(`\`${name}\``), name)
  })

  it('documents the /v2 routes', () => {
    for (const path of [
      '/v2/health/live',
      '/v2/health/ready',
      '/v2/models/{name}[/versions/1]/infer',
      'alphanet-auto',
    ]) {
      assert.ok(doc.includes(path), path)
    }
  })
})
