/**
 * What a test sees of a network it can reach only from inside a namespace: run as a process in
 * one (`ip netns exec NS node --import tsx labProbe.ts ...`), prints one JSON line and exits.
 *   http METHOD URL TOKEN [BODY]         → {status, json}
 *   tasks RPC DEPLOYMENT ORACLE          → [{taskId, state}] of every task ORACLE created
 */
import {readDeployment} from '../../src/chain/deployment.js'
import {connectContracts} from '../../src/chain/contracts.js'
import {taskStateName} from '../../src/chain/enums.js'
import {createProvider} from '../../src/chain/provider.js'

const [command, ...args] = process.argv.slice(2)

async function main (): Promise<unknown> {
  switch (command) {
    case 'http': {
      const [method, url, token, body] = args as [string, string, string, string | undefined]
      const res = await fetch(url, {
        method,
        headers: {authorization: `Bearer ${token}`, ...(body == null ? {} : {'content-type': 'application/json'})},
        body,
        signal: AbortSignal.timeout(120_000)
      })
      const text = await res.text()
      let json: unknown
      try { json = JSON.parse(text) } catch { json = text }
      return {status: res.status, json}
    }
    case 'tasks': {
      const [rpc, deploymentFile, oracle] = args as [string, string, string]
      const deployment = await readDeployment(deploymentFile)
      const provider = createProvider(rpc, deployment.chainId)
      try {
        const {cognitive} = connectContracts(deployment, provider)
        const created = await cognitive.queryFilter(cognitive.getEvent('TaskCreated')(null, oracle), deployment.deployBlock)
        return await Promise.all(created.map(async (log) => {
          const taskId = (log as unknown as {args: {taskId: bigint}}).args.taskId
          const task = await cognitive.getFunction('taskOf')(taskId) as {state: bigint}
          return {taskId: taskId.toString(), state: taskStateName(task.state)}
        }))
      } finally {
        provider.destroy()
      }
    }
    default:
      throw new Error(`labProbe: unknown command ${String(command)}`)
  }
}

main().then(out => { process.stdout.write(JSON.stringify(out) + '\n') }, (err: Error) => {
  process.stderr.write(`labProbe: ${err.message}\n`)
  process.exitCode = 1
})
