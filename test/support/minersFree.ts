import type {Devnet} from '../../src/devnet/devnet.js'
import {until} from './until.js'

/**
 * Waits until the devnet's oracle sees `n` miners with the model and a free slot, as it picks
 * them: a heartbeat reports a busy slot for up to one interval after the miner's last task, and
 * the oracle refuses (503) a task it cannot staff now. Fails naming what it waited for after
 * `timeoutMs`, rather than spin forever.
 */
export async function minersFree (devnet: Devnet, n: number, timeoutMs = 120_000): Promise<void> {
  await until(`${n} miners with the model and a free slot`, timeoutMs, async () => {
    const res = await fetch(`${devnet.apiUrl}/api/v1/miners`, {headers: {authorization: `Bearer ${devnet.apiToken}`}})
    // Model ids come as decimal strings, as the API writes every model id.
    const {miners} = await res.json() as {miners: Array<{models: Array<{id: string}>, freeSlots: number}>}
    return miners.filter(m => m.models.some(s => s.id === devnet.modelId) && m.freeSlots > 0).length >= n ? true : undefined
  })
}
