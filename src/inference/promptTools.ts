import {resolveChatWrapper, type LlamaModel} from 'node-llama-cpp'
import type {Logger} from '../util/logger.js'
import {getSharedLlama} from './getSharedLlama.js'
import {promptTokensOf} from './promptTokens.js'

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant'
  content: string
}

/**
 * What a gateway needs of a model without running it: token counts (usage, context checks)
 * and chat rendering. Loads the vocabulary only: no weights, no context.
 */
export class PromptTools {
  private constructor (private readonly model: LlamaModel) {}

  static async load (init: {modelPath: string, logger: Logger}): Promise<PromptTools> {
    const llama = await getSharedLlama({logger: init.logger})
    return new PromptTools(await llama.loadModel({modelPath: init.modelPath, vocabOnly: true}))
  }

  countTokens (text: string): number {
    return promptTokensOf(this.model, text).length
  }

  /** Whether the GGUF carries a chat template (stories260K does not). */
  get hasChatTemplate (): boolean {
    return typeof this.model.fileInfo.metadata.tokenizer?.chat_template === 'string'
  }

  /**
   * The messages as one prompt: through the model's own chat template when it has one, else a
   * plain transcript ending with the assistant's turn, which any completion model can continue.
   */
  renderChat (messages: readonly ChatMessage[]): string {
    if (this.hasChatTemplate) {
      const wrapper = resolveChatWrapper(this.model)
      const chatHistory = messages.map(m => m.role === 'assistant'
        ? {type: 'model' as const, response: [m.content]}
        : {type: m.role, text: m.content})
      chatHistory.push({type: 'model', response: []})
      return wrapper.generateContextState({chatHistory}).contextText.toString()
    }
    return [...messages.map(m => `${ROLE_LABEL[m.role]}: ${m.content}`), `${ROLE_LABEL.assistant}:`].join('\n')
  }

  async dispose (): Promise<void> {
    await this.model.dispose()
  }
}

const ROLE_LABEL: {[K in ChatMessage['role']]: string} = {system: 'System', user: 'User', assistant: 'Assistant'}
