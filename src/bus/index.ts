// The message bus: one MQTT connection (or in-process router) per agent group.
export { Bus, embeddedBrokerUrl, type BusGap, type BusStats, type OutboundMessage } from './bus.js'
export type { BusMessage } from './inbound.js'
export { BusOptionsSchema, MESSAGE_KINDS, type BusOptions, type MessageKind, type QosLevel } from './options.js'
