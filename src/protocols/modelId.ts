declare const modelIdBrand: unique symbol

/**
 * A ModelRegistry id (uint256 on chain) in its one in-process form, a decimal string: msgpack
 * has no integer that wide, and a string is a map key as it is. `BigInt(id)` at the chain call.
 */
export type ModelId = string & {readonly [modelIdBrand]: true}

const DECIMAL = /^(0|[1-9][0-9]{0,77})$/

export function toModelId (value: number | bigint | string): ModelId {
  const text = typeof value === 'string' ? value : value.toString()
  if (!DECIMAL.test(text)) throw new RangeError(`not a model id (a registry number): ${JSON.stringify(text)}`)
  return text as ModelId
}
