/** A setting that stops the server at start; its message names the variable. */
export class ConfigError extends Error {
  override name = 'ConfigError'
}
