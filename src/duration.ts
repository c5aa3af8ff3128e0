// Durations in configuration are written the way people say them: "900" (seconds), "15m", "7d".
export const DURATION_PATTERN = '^[0-9]+(ms|s|m|h|d)?$'

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

export function parseDurationMs (value: string): number {
  const match = /^([0-9]+)(ms|s|m|h|d)?$/.exec(value)
  if (match === null) throw new Error(`not a duration: ${value}`)
  return Number(match[1]) * (UNIT_MS[match[2] ?? 's'] as number)
}
