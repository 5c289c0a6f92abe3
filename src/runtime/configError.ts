import {CortensorError} from '../util/cortensorError.js'

/** A config value, file or command-line flag that cannot be used: the field (or file) and why, in one line. */
export class ConfigError extends CortensorError<{code: 'CONFIG_INVALID', field: string} | {code: 'CONFIG_UNREADABLE', file: string}> {}
