/**
 * The dependency-audit policy of `npm run audit` (scripts/audit.ts): high or critical advisories in
 * production dependencies fail; lower ones are listed; an audit that cannot run warns (and fails
 * only with AUDIT_STRICT=1). Decided from npm's own JSON, so no network is needed here.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { auditVerdict } from '../../scripts/audit.js'

const report = (counts: Record<string, number>, vulnerabilities: Record<string, object> = {}) =>
  JSON.stringify({
    auditReportVersion: 2,
    vulnerabilities,
    metadata: { vulnerabilities: { info: 0, low: 0, moderate: 0, high: 0, critical: 0, ...counts } },
  })

describe('npm run audit policy', () => {
  it('passes a clean report', () => {
    const verdict = auditVerdict(report({}), '', false)
    assert.equal(verdict.exitCode, 0)
    assert.match(verdict.lines[0] ?? '', /ok — production dependencies: 0 critical, 0 high/)
  })

  it('lists moderate and low advisories without failing', () => {
    const verdict = auditVerdict(
      report({ moderate: 1, low: 2 }, { 'some-lib': { severity: 'moderate', fixAvailable: true } }),
      '',
      false,
    )
    assert.equal(verdict.exitCode, 0)
    assert.ok(verdict.lines.some((l) => /moderate\s+some-lib \(fix available/.test(l)))
  })

  it('fails on high or critical advisories, worst first', () => {
    for (const severity of ['high', 'critical']) {
      const verdict = auditVerdict(
        report({ [severity]: 1, low: 1 }, { a: { severity: 'low' }, b: { severity } }),
        '',
        false,
      )
      assert.equal(verdict.exitCode, 1, severity)
      assert.match(verdict.lines[0] ?? '', /FAIL/)
      assert.match(verdict.lines[1] ?? '', new RegExp(`${severity}\\s+b`))
    }
  })

  it('an unreachable registry or a mirror without the audit endpoint only warns', () => {
    const mirror = JSON.stringify({
      message: '405 Method Not Allowed - POST https://registry.example/-/npm/v1/security/advisories/bulk',
      statusCode: 405,
    })
    const offline = 'npm error code ENOTFOUND\nnpm error network request to https://registry.example failed'
    for (const [stdout, stderr] of [
      [mirror, 'npm error audit endpoint returned an error'],
      ['', offline],
    ] as const) {
      const verdict = auditVerdict(stdout, stderr, false)
      assert.equal(verdict.exitCode, 0)
      assert.match(verdict.lines[0] ?? '', /WARNING — the dependency audit could not run/)
      assert.equal(auditVerdict(stdout, stderr, true).exitCode, 1, 'AUDIT_STRICT=1 fails')
    }
  })

  it('any other failure without a report fails', () => {
    const verdict = auditVerdict(
      '',
      'npm error code ENOLOCK\nnpm error audit This command requires an existing lockfile',
      false,
    )
    assert.equal(verdict.exitCode, 1)
  })
})
