import type {ActorRef, ActorSystem} from '../../actors/actorSystem.js'
import {ASK_TIMEOUT_MS} from '../../actors/askTimeouts.js'

/** The status query every actor of the node answers. */
export interface GetStatus<R> {
  type: 'GetStatus'
  replyTo: ActorRef<R>
}

/**
 * An actor's `GetStatus` for heartbeats and the status route: undefined while the actor is not
 * started or does not answer in time, so a slow actor never stalls a heartbeat.
 */
export async function askStatus<R> (system: ActorSystem, ref: ActorRef<GetStatus<R>> | undefined): Promise<R | undefined> {
  if (ref == null) return undefined
  return await system.ask<GetStatus<R>, R>(ref, replyTo => ({type: 'GetStatus', replyTo}), ASK_TIMEOUT_MS.status).catch(() => undefined)
}
