import type {TaskRecord} from '../../src/actors/oracle/messages.js'
import type {Devnet, DevnetNode} from '../../src/devnet/devnet.js'
import {toAddress} from '../../src/protocols/address.js'
import {until} from './until.js'

/** The devnet oracle's router API as the sim tests use it: a call, a task's settlement, miners ready. */
export interface DevnetApi {
  api: (path: string, body?: unknown) => Promise<{status: number, json: any}>
  /** The task's record once the chain ended or expired it. */
  settled: (taskId: string) => Promise<TaskRecord>
  /** Until the oracle hears each of `miners` with a model to serve. */
  ready: (miners: DevnetNode[]) => Promise<void>
}

/** `devnet` is read at each call: the tests start it in `before`. */
export function devnetApi (devnet: () => Devnet): DevnetApi {
  const api: DevnetApi['api'] = async (path, body) => {
    const res = await fetch(`${devnet().apiUrl}${path}`, {
      method: body == null ? 'GET' : 'POST',
      headers: {'content-type': 'application/json', authorization: `Bearer ${devnet().apiToken}`},
      body: body == null ? undefined : JSON.stringify(body)
    })
    return {status: res.status, json: await res.json()}
  }
  return {
    api,
    settled: async (taskId) => await until(`task ${taskId} settled`, 120_000, async () => {
      const {json} = await api(`/api/v1/tasks/${taskId}`)
      return json.phase === 'ended' || json.phase === 'expired' ? json as TaskRecord : undefined
    }),
    ready: async (miners) => {
      const wanted = new Set(miners.map(m => toAddress(m.info.address)))
      await until(`${miners.length} miners ready at the oracle`, 180_000, async () => {
        const {json} = await api('/api/v1/miners')
        const live = (json.miners as Array<{address: string, models: unknown[], heartbeatAgeMs: number}>).filter(m => wanted.has(toAddress(m.address)) && m.models.length > 0 && m.heartbeatAgeMs < 3_000)
        return live.length === wanted.size ? true : undefined
      })
    }
  }
}
