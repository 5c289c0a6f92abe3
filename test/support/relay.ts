import {createServer, connect, type Server, type Socket} from 'node:net'

/** A TCP relay to anvil that can be switched off (connection refused) and on again. */
export class Relay {
  private server: Server | undefined
  private readonly sockets = new Set<Socket>()
  constructor (readonly port: number, private readonly target: number) {}

  async up (): Promise<void> {
    this.server = createServer((client) => {
      const upstream = connect(this.target, '127.0.0.1')
      for (const s of [client, upstream]) {
        this.sockets.add(s)
        s.on('close', () => this.sockets.delete(s))
        s.on('error', () => s.destroy())
      }
      client.pipe(upstream).pipe(client)
    })
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve))
  }

  async down (): Promise<void> {
    for (const s of this.sockets) s.destroy()
    await new Promise<void>((resolve) => this.server === undefined ? resolve() : this.server.close(() => resolve()))
    this.server = undefined
  }
}

export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as {port: number}).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}
