/**
 * What the zoo CLIs (`validate-zoo.ts`, `cascades.ts`) share: where they write, option parsing with
 * `--help`, and usage errors that print the usage text and exit with code 2.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util'

/** Where a CLI writes; tests pass collectors. */
export interface CliOutput {
  out: (text: string) => void
  err: (text: string) => void
}

export const PROCESS_OUTPUT: CliOutput = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
}

/** A bad command line: printed with the usage text, exit code 2. */
export class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig['options']>

/**
 * `argv` parsed against `options` (plus `-h/--help`), or the exit code when there is nothing to
 * run: 0 after printing the usage for `--help`, 2 after printing an unknown or malformed option.
 */
export function parseCommandLine<O extends Options>(
  argv: string[],
  options: O,
  usage: string,
  io: CliOutput,
) {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
    })
  } catch (error) {
    io.err(`${(error as Error).message}\n\n${usage}\n`)
    return 2
  }
  if ((parsed.values as { help?: boolean }).help) {
    io.out(`${usage}\n`)
    return 0
  }
  return parsed
}

/** Prints a UsageError with the usage text and returns 2; rethrows anything else. */
export function usageFailure(error: unknown, usage: string, io: CliOutput): number {
  if (!(error instanceof UsageError)) throw error
  io.err(`${error.message}\n\n${usage}\n`)
  return 2
}

/**
 * The number given for `flag`, `fallback` when absent; a UsageError unless it is positive (or
 * zero with `allowZero`) and, with `integer`, whole.
 */
export function numberOption(
  value: string | undefined,
  flag: string,
  fallback: number,
  { integer = false, allowZero = false } = {},
): number {
  if (value === undefined) return fallback
  const parsed = Number(value)
  const whole = !integer || Number.isInteger(parsed)
  if (!Number.isFinite(parsed) || !whole || parsed < 0 || (parsed === 0 && !allowZero)) {
    const what = `${allowZero ? 'non-negative' : 'positive'} ${integer ? 'integer' : 'number'}`
    throw new UsageError(`${flag} expects a ${what}, got ${JSON.stringify(value)}`)
  }
  return parsed
}
