import type {LlamaModel, Token} from 'node-llama-cpp'

/**
 * The prompt as a context holds it: BOS (when the model wants one) + the text without an added
 * leading space, as LlamaCompletion tokenizes it. The engine and the oracle's accounting both
 * count with this, so `usage` and the context check agree with what the miners run.
 */
export function promptTokensOf (model: LlamaModel, text: string): Token[] {
  const bos = model.tokens.shouldPrependBosToken ? model.tokens.bos : null
  const body = model.tokenize(text, false, 'trimLeadingSpace')
  return bos === null ? body : [bos, ...body]
}
