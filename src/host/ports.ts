/** The fixed ports infra's services listen on, on every host of the fleet. */

/** The node exporter on every host (the private address of a web node, loopback on the bastion). */
export const NODE_EXPORTER_PORT = 9100

/** HAProxy's stats page and Prometheus exporter, on the bastion's private address. */
export const HAPROXY_STATS_PORT = 8404

/**
 * The two loopback ports of a web node the app's containers are published on: the current release
 * on one, the next one starts on the other, and nginx switches between them.
 */
export const APP_SLOT_PORTS = [9201, 9202] as const
/** On web nodes: the loopback range the sites' deploy units take their two slots from (infra-app -u). */
export const UNIT_SLOT_RANGE = [9300, 9899] as const
