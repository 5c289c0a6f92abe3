/**
 * A lab of Linux network namespaces on one isolated bridge: each "host" is a namespace with its
 * own 10.x address, the bridge lives in a namespace of its own (no uplink, nothing added to the
 * caller's namespace but the veth pairs on their way in), and a host may sit behind a NAT
 * router that drops new inbound connections. Everything is removed by `destroy`. Needs root,
 * `ip` (iproute2) and `iptables`.
 */
import {execFile, spawn, type ChildProcess} from 'node:child_process'
import {existsSync} from 'node:fs'
import {promisify} from 'node:util'

const run = promisify(execFile)

export interface LabHost {
  name: string
  ns: string
  /** Its address on the lab's network; a NATed host's is private (reachable only from its router). */
  ip: string
}

export interface Lab {
  hosts: Map<string, LabHost>
  host: (name: string) => LabHost
  /** Runs `command` inside the host's namespace as a child process (stdio as given). */
  spawnIn: (host: string, command: string, args: string[], opts?: {env?: NodeJS.ProcessEnv, cwd?: string, stdio?: Array<'pipe' | 'ignore' | 'inherit' | number>}) => ChildProcess
  /** Runs a command inside the host's namespace to its end. */
  execIn: (host: string, command: string, args: string[], opts?: {timeoutMs?: number, env?: NodeJS.ProcessEnv, cwd?: string}) => Promise<{stdout: string, stderr: string}>
  destroy: () => Promise<void>
}

/** Why the lab cannot be built here, or null when it can. */
export function netnsUnavailable (): string | null {
  if (process.getuid?.() !== 0) return 'needs root to create network namespaces (CI runs as root)'
  for (const tool of ['/usr/sbin/ip', '/usr/sbin/iptables']) {
    if (!existsSync(tool) && !existsSync(tool.replace('/usr/sbin/', '/sbin/'))) return `needs ${tool.split('/').pop() ?? tool} (iproute2, iptables)`
  }
  return null
}

async function ip (...args: string[]): Promise<void> {
  await run('ip', args)
}

/**
 * Builds the lab: `public` hosts get 10.<net>.0.<10+i>/24 on the bridge; each `natted` host gets
 * 10.<net+1>.<j>.2 behind its own router (10.<net>.0.<200+j> on the bridge), which masquerades
 * its outbound connections and drops every new inbound one.
 */
export async function createLab (opts: {id: string, net: number, public: string[], natted?: string[]}): Promise<Lab> {
  const {id, net} = opts
  const namespaces: string[] = []
  const hosts = new Map<string, LabHost>()
  const sw = `${id}-sw`
  const newNs = async (ns: string): Promise<void> => {
    await ip('netns', 'add', ns)
    namespaces.push(ns)
    await ip('-n', ns, 'link', 'set', 'lo', 'up')
  }
  let links = 0
  /** A veth pair from `ns` (address `cidr`) to the bridge. */
  const plug = async (ns: string, cidr: string): Promise<string> => {
    const n = links++
    const inside = `${id}h${n}`
    const outside = `${id}s${n}`
    await ip('link', 'add', inside, 'type', 'veth', 'peer', 'name', outside)
    await ip('link', 'set', inside, 'netns', ns)
    await ip('link', 'set', outside, 'netns', sw)
    await ip('-n', sw, 'link', 'set', outside, 'master', 'br0', 'up')
    await ip('-n', ns, 'addr', 'add', cidr, 'dev', inside)
    await ip('-n', ns, 'link', 'set', inside, 'up')
    return inside
  }

  const lab: Lab = {
    hosts,
    host: (name) => {
      const h = hosts.get(name)
      if (h == null) throw new Error(`no host ${name} in the lab`)
      return h
    },
    // `ip netns exec` execs the command itself: the child's pid is the command's (a signal reaches it).
    spawnIn: (host, command, args, spawnOpts = {}) => spawn('ip', ['netns', 'exec', lab.host(host).ns, command, ...args], {env: spawnOpts.env, cwd: spawnOpts.cwd, stdio: spawnOpts.stdio ?? ['ignore', 'pipe', 'pipe']}),
    execIn: async (host, command, args, execOpts = {}) => await run('ip', ['netns', 'exec', lab.host(host).ns, command, ...args], {timeout: execOpts.timeoutMs ?? 60_000, env: execOpts.env, cwd: execOpts.cwd, maxBuffer: 16 * 1024 * 1024}),
    destroy: async () => {
      for (const ns of namespaces.reverse()) {
        // Whatever still runs inside dies with it: kill it first, then the namespace (and its veths) go.
        const pids = await run('ip', ['netns', 'pids', ns]).then(r => r.stdout.split(/\s+/).filter(p => p !== ''), () => [])
        for (const pid of pids) { try { process.kill(Number(pid), 'SIGKILL') } catch {} }
        await ip('netns', 'del', ns).catch(() => {})
      }
    }
  }

  try {
    await newNs(sw)
    await ip('-n', sw, 'link', 'add', 'br0', 'type', 'bridge')
    await ip('-n', sw, 'link', 'set', 'br0', 'up')
    for (const [i, name] of opts.public.entries()) {
      const ns = `${id}-${name}`
      await newNs(ns)
      const addr = `10.${net}.0.${10 + i}`
      await plug(ns, `${addr}/24`)
      hosts.set(name, {name, ns, ip: addr})
    }
    for (const [j, name] of (opts.natted ?? []).entries()) {
      const router = `${id}-gw${j}`
      await newNs(router)
      const wan = await plug(router, `10.${net}.0.${200 + j}/24`)
      const ns = `${id}-${name}`
      await newNs(ns)
      const inside = `${id}n${j}`
      const lan = `${id}g${j}`
      await ip('link', 'add', inside, 'type', 'veth', 'peer', 'name', lan)
      await ip('link', 'set', inside, 'netns', ns)
      await ip('link', 'set', lan, 'netns', router)
      const priv = `10.${net + 1}.${j}`
      await ip('-n', router, 'addr', 'add', `${priv}.1/24`, 'dev', lan)
      await ip('-n', router, 'link', 'set', lan, 'up')
      await ip('-n', ns, 'addr', 'add', `${priv}.2/24`, 'dev', inside)
      await ip('-n', ns, 'link', 'set', inside, 'up')
      await ip('-n', ns, 'route', 'add', 'default', 'via', `${priv}.1`)
      const inRouter = async (...args: string[]): Promise<void> => { await run('ip', ['netns', 'exec', router, ...args]) }
      await inRouter('sysctl', '-q', '-w', 'net.ipv4.ip_forward=1')
      await inRouter('iptables', '-t', 'nat', '-A', 'POSTROUTING', '-o', wan, '-j', 'MASQUERADE')
      await inRouter('iptables', '-A', 'FORWARD', '-i', wan, '-o', lan, '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT')
      await inRouter('iptables', '-A', 'FORWARD', '-i', wan, '-o', lan, '-j', 'DROP')
      hosts.set(name, {name, ns, ip: `${priv}.2`})
    }
  } catch (err) {
    await lab.destroy()
    throw err
  }
  return lab
}
