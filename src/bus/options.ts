// The bus's options as a zod schema (types inferred, defaults from the Rust core).
import { z } from 'zod'

import { defaults } from '../native/index.js'

/** The three kinds of message, each a topic level: `exps/<exp>/agents/<agentId>/<kind>`. */
export const MESSAGE_KINDS = ['agent-chat', 'user-chat', 'user-survey'] as const
export type MessageKind = (typeof MESSAGE_KINDS)[number]
export type QosLevel = 0 | 1 | 2

const qos = z.union([z.literal(0), z.literal(1), z.literal(2)])
const u32 = z
  .number()
  .int()
  .min(0)
  .max(2 ** 32 - 1)
const ms = (what: string, fallback: number) => u32.default(fallback).describe(what)
const [agentChatQos, userChatQos, userSurveyQos] = defaults.bus.qos as QosLevel[]

export const BusOptionsSchema = z
  .strictObject({
    url: z.string().min(1).optional().describe('`mqtt://host:port` or `mqtts://...`. Omitted: the embedded broker (rumqttd, in this process).'),
    transport: z
      .enum(['mqtt', 'local'])
      .default(defaults.bus.transport as 'mqtt' | 'local')
      .describe("`'local'`: an in-process router, no broker at all (single-process runs, tests)."),
    exp: z.string().min(1).describe('Experiment id: the `<exp>` topic level (required).'),
    group: z.string().min(1).default('default').describe('The agent group this connection serves (one connection per group, shared by its agents).'),
    clientId: z.string().min(1).optional().describe('MQTT client id; default `myriad-<exp>-<group>`. Must be unique per broker for persistent sessions.'),
    agents: z.array(z.string()).optional().describe("The group's agents: messages addressed to them are delivered here."),
    subscribe: z
      .enum(['agents', 'experiment'])
      .default(defaults.bus.subscribe as 'agents' | 'experiment')
      .describe("`'agents'`: one subscription per agent; `'experiment'`: one wildcard, demultiplexed here."),
    protocol: z
      .union([z.literal(5), z.literal(4)])
      .default(defaults.bus.protocol as 5 | 4)
      .describe('MQTT version: 5 (the envelope travels as user properties) or 4 (3.1.1; as a header).'),
    qos: z
      .strictObject({
        'agent-chat': qos.default(agentChatQos),
        'user-chat': qos.default(userChatQos),
        'user-survey': qos.default(userSurveyQos),
      })
      .prefault({})
      .describe('QoS per kind.'),
    session: z
      .enum(['persistent', 'clean'])
      .default(defaults.bus.session as 'persistent' | 'clean')
      .describe("`'persistent'`: the broker keeps subscriptions and queued messages across reconnects."),
    sessionExpiryS: u32.default(defaults.bus.sessionExpiryS).describe('How long the broker keeps a persistent session after a disconnect (MQTT 5).'),
    username: z.string().optional(),
    password: z.string().optional(),
    tls: z
      .union([z.boolean(), z.strictObject({ ca: z.string().optional(), cert: z.string().optional(), key: z.string().optional() })])
      .optional()
      .describe("TLS (also implied by `mqtts://`): PEM paths of the broker's CA and, optionally, a client certificate."),
    maxPayload: u32.default(defaults.bus.maxPayload).describe('Largest payload accepted by `publish`, bytes.'),
    inflight: z.number().int().min(1).max(65_534).default(defaults.bus.inflight).describe('QoS 1/2 messages in flight before the broker acknowledges.'),
    inboxCapacity: u32.default(defaults.bus.inboxCapacity).describe('Inbound messages held for JavaScript before the network reads pause.'),
    dedupeWindow: u32.default(defaults.bus.dedupeWindow).describe('Recent msgIds remembered to drop duplicates.'),
    keepAliveS: z.number().int().min(0).max(65_535).default(defaults.bus.keepAliveS).describe('MQTT keep-alive interval, seconds.'),
    connectTimeoutMs: ms('How long `connect` waits for the broker.', defaults.bus.connectTimeoutMs),
    closeTimeoutMs: ms('How long `close()` waits for outstanding acknowledgements.', defaults.bus.closeTimeoutMs),
    endMarkIdleMs: ms(
      'A stream (destination agent and kind) that got messages and then none for this long gets an end mark, so receivers learn of messages lost at its end before this bus closes (0: marks only at close). MQTT only.',
      defaults.bus.endMarkIdleMs,
    ),
    creditWindow: u32
      .optional()
      .describe(
        `Flow control across the broker: QoS 1/2 messages this bus may have sent that no receiver has reported reading yet. Keeps a slow receiver's backlog under a broker's queue limit (Mosquitto drops past 1,000 by default). 0: credits off. Default ${defaults.bus.creditWindow}, or 0 on the embedded broker (it drops nothing). MQTT only.`,
      ),
  })
  .describe('Bus.connect(options)')

export type BusOptions = z.input<typeof BusOptionsSchema>
