import { STATUS_CODES } from 'node:http'

// Errors a handler throws on purpose; the error handler turns them into the contract's shape.
export class HttpError extends Error {
  readonly statusCode: number
  readonly headers: Record<string, string> | undefined

  constructor (statusCode: number, message: string, headers?: Record<string, string>) {
    super(message)
    this.statusCode = statusCode
    this.headers = headers
  }
}

export interface ErrorBody { statusCode: number, error: string, message: string }

export function errorBody (statusCode: number, message: string): ErrorBody {
  return { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message }
}

/** The client's own text (a header value) in a message: cut short, quoted and escaped. */
export function quoted (value: string): string {
  return JSON.stringify(value.length > 50 ? `${value.slice(0, 50)}...` : value)
}
