/**
 * `npm run audit`: the dependency audit policy (RELIABILITY.md, "Dependency audit").
 *
 * - Scope: production dependencies only (`--omit=dev`): they are what ships in the image. Dev tools
 *   (lint, tests, the browser test driver) never run in production.
 * - Fails (exit 1) on any advisory of severity high or critical; moderate and low are listed but do
 *   not fail the build.
 * - When the audit cannot run — no network, or a registry mirror without the advisory endpoint —
 *   it prints a warning and exits 0, so an offline build is not failed for something it cannot
 *   know. AUDIT_STRICT=1 turns that case into a failure too (for a CI that must enforce the audit).
 */
import { spawnSync } from 'node:child_process'
import { pathToFileURL } from 'node:url'

export type Severity = 'info' | 'low' | 'moderate' | 'high' | 'critical'
const FAILING: readonly Severity[] = ['high', 'critical']

export interface Verdict {
  exitCode: 0 | 1
  /** What to print: one summary line, then details. */
  lines: string[]
}

interface AuditReport {
  metadata?: { vulnerabilities?: Partial<Record<Severity | 'total', number>> }
  vulnerabilities?: Record<string, { severity?: Severity; via?: unknown[]; fixAvailable?: unknown }>
  error?: unknown
  message?: string
  statusCode?: number
}

/** Network and service failures: the audit did not happen, it did not find anything. */
const UNAVAILABLE =
  /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|socket hang up|network|audit endpoint returned an error|Method Not Allowed|\b5\d\d\b/i

/** Decides the outcome from `npm audit --json`'s output and exit status. */
export function auditVerdict(stdout: string, stderr: string, strict: boolean): Verdict {
  let report: AuditReport | undefined
  try {
    report = JSON.parse(stdout) as AuditReport
  } catch {
    report = undefined
  }
  const counts = report?.metadata?.vulnerabilities
  if (!counts) {
    const reason = (
      report?.message ??
      stderr.split('\n').find((l) => /error|warn/i.test(l)) ??
      'no report'
    ).trim()
    if (!UNAVAILABLE.test(`${reason}\n${stderr}`) && report?.statusCode === undefined) {
      return { exitCode: 1, lines: [`audit: npm audit failed without a report: ${reason}`] }
    }
    const line = `audit: WARNING — the dependency audit could not run (${reason}); nothing was checked`
    return strict
      ? { exitCode: 1, lines: [line, 'audit: AUDIT_STRICT=1, so this fails the build'] }
      : { exitCode: 0, lines: [line] }
  }
  const severities: Severity[] = ['critical', 'high', 'moderate', 'low', 'info']
  const summary = severities.map((s) => `${counts[s] ?? 0} ${s}`).join(', ')
  const details = Object.entries(report?.vulnerabilities ?? {})
    .map(([name, v]) => ({ name, severity: v.severity ?? 'info', fix: v.fixAvailable }))
    .sort((a, b) => severities.indexOf(a.severity) - severities.indexOf(b.severity))
    .map((v) => `  ${v.severity.padEnd(8)} ${v.name}${v.fix ? ' (fix available: npm audit fix)' : ''}`)
  const failing = FAILING.reduce((sum, s) => sum + (counts[s] ?? 0), 0)
  if (failing > 0) {
    return {
      exitCode: 1,
      lines: [
        `audit: FAIL — production dependencies have ${summary} advisories (high or critical fail)`,
        ...details,
      ],
    }
  }
  return { exitCode: 0, lines: [`audit: ok — production dependencies: ${summary}`, ...details] }
}

function main(): void {
  const run = spawnSync('npm', ['audit', '--omit=dev', '--json'], { encoding: 'utf8', timeout: 120_000 })
  const verdict = auditVerdict(
    run.stdout,
    `${run.stderr}${run.error ? String(run.error) : ''}`,
    process.env.AUDIT_STRICT === '1',
  )
  const print = verdict.exitCode === 0 ? console.log : console.error
  for (const line of verdict.lines) print(line)
  process.exitCode = verdict.exitCode
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) main()
