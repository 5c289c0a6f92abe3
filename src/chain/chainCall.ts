import type {AbiFunction, AbiParameter, AbiParametersToPrimitiveTypes, ExtractAbiFunction, ExtractAbiFunctionNames} from 'abitype'
import {toAddress, type Address} from '../protocols/address.js'
import type {ContractName} from './contractNames.js'
import type {CONTRACT_ABIS} from './contracts.js'

/**
 * Typed chain calls (viem style): an operation is `{contract, functionName, args}` whose
 * argument and result types come from the generated `as const` ABIs, so a wrong name, a
 * missing argument or a wrong type fails to compile and a read's result needs no cast.
 *
 * abitype's primitive types, set once for the project (`Register`): an ABI `address` is our
 * one branded `Address` (results are normalised with `toAddress` before they reach a caller),
 * `bytes`/`bytesN` are hex strings (what ethers' `hexlify` returns), integers up to 48 bits are
 * `number` and wider ones `bigint` (abitype's defaults, which `toAbiResult` follows).
 */
declare module 'abitype' {
  interface Register {
    addressType: Address
    bytesType: {inputs: string, outputs: string}
  }
}

type Abis = typeof CONTRACT_ABIS

/** State-changing functions of contract `C` (sent from the node's wallet). */
export type WriteFunctionName<C extends ContractName> = ExtractAbiFunctionNames<Abis[C], 'nonpayable' | 'payable'>
/** Functions of contract `C` that only read (`eth_call`). */
export type ReadFunctionName<C extends ContractName> = ExtractAbiFunctionNames<Abis[C], 'view' | 'pure'>
type FunctionName<C extends ContractName> = WriteFunctionName<C> | ReadFunctionName<C>

type FunctionOf<C extends ContractName, F extends FunctionName<C>> = ExtractAbiFunction<Abis[C], F>

/** The arguments of `C.F`, as a tuple. */
export type FunctionArgs<C extends ContractName, F extends FunctionName<C>> =
  AbiParametersToPrimitiveTypes<FunctionOf<C, F>['inputs'], 'inputs'>

type Outputs<C extends ContractName, F extends FunctionName<C>> =
  AbiParametersToPrimitiveTypes<FunctionOf<C, F>['outputs'], 'outputs'>

/** What a read of `C.F` resolves to: the single output unwrapped, `undefined` for none, else the tuple. */
export type ReadResult<C extends ContractName, F extends ReadFunctionName<C>> =
  Outputs<C, F> extends readonly [] ? undefined
    : Outputs<C, F> extends readonly [infer Only] ? Only
      : Outputs<C, F>

/** One state-changing call: a closed union over every contract and every nonpayable/payable function. */
export type ChainWrite = {
  [C in ContractName]: {
    [F in WriteFunctionName<C>]: {contract: C, functionName: F, args: FunctionArgs<C, F>}
  }[WriteFunctionName<C>]
}[ContractName]

/**
 * One read of a view/pure function. Without type arguments, the closed union over every
 * contract and read function; with them, that one call (what `ChainClient.read` infers).
 */
export type ChainRead<C extends ContractName = ContractName, F extends ReadFunctionName<C> = ReadFunctionName<C>> = {
  [K in C]: {
    [G in F & ReadFunctionName<K>]: {contract: K, functionName: G, args: FunctionArgs<K, G>}
  }[F & ReadFunctionName<K>]
}[C]

/** The ABI entry of a function by name (the generated ABIs have no overloads). */
export function abiFunction (abi: readonly unknown[], functionName: string): AbiFunction {
  const fn = (abi as ReadonlyArray<{type?: string, name?: string}>).find(entry => entry.type === 'function' && entry.name === functionName)
  if (fn === undefined) throw new RangeError(`no function ${functionName} in the ABI`)
  return fn as AbiFunction
}

/**
 * An ethers result (a `Result` for a tuple; `bigint` for every integer; checksummed
 * addresses) in the shape `ReadResult` describes: the single output unwrapped, structs as
 * plain objects with their named fields, integers up to 48 bits as numbers, addresses in
 * their one in-process form.
 */
export function toAbiResult (fn: AbiFunction, value: unknown): unknown {
  if (fn.outputs.length === 0) return undefined
  // A `staticCall` of a single-output function hands over the output itself, not a Result.
  if (fn.outputs.length === 1) return toAbiValue(fn.outputs[0]!, value)
  return toAbiTuple(fn.outputs, value)
}

function toAbiTuple (params: readonly AbiParameter[], value: unknown): unknown {
  const items = Array.from(value as ArrayLike<unknown>)
  // abitype: an object when every component is named, an array otherwise.
  if (params.length > 0 && params.every(p => p.name !== undefined && p.name !== '')) {
    return Object.fromEntries(params.map((p, i) => [p.name, toAbiValue(p, items[i])]))
  }
  return params.map((p, i) => toAbiValue(p, items[i]))
}

function toAbiValue (param: AbiParameter, value: unknown): unknown {
  const array = /^(.*)\[\d*\]$/.exec(param.type)
  if (array !== null) {
    const element = {...param, type: array[1]!}
    return Array.from(value as ArrayLike<unknown>).map(v => toAbiValue(element, v))
  }
  if (param.type === 'tuple') return toAbiTuple((param as {components: readonly AbiParameter[]}).components, value)
  if (param.type === 'address') return toAddress(value as string)
  const int = /^u?int(\d*)$/.exec(param.type)
  if (int !== null) {
    const bits = int[1] === '' ? 256 : Number(int[1])
    return bits <= 48 ? Number(value) : BigInt(value as bigint)
  }
  return value
}
