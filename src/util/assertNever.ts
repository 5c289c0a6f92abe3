/** Ends every `switch` over a closed union: adding a member without handling it fails to compile. */
export function assertNever (value: never, what = 'value'): never {
  throw new Error(`unexpected ${what}: ${JSON.stringify(value)}`)
}
