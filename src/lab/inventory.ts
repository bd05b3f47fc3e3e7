import {BASTION_NAME, BASTION_PRIVATE_ADDRESS, BASTION_PUBLIC_ADDRESS, LAB_ALIASES, LAB_DOMAIN, LabPlan, PRIVATE_NETWORK} from './topology.js'

/** The second line of every inventory the lab writes: how `lab up` recognises a file it may overwrite. */
export const LAB_MARKER = '# infra lab inventory (written by `infra lab up`; `infra lab down` removes the lab)'

/** Folder beside the inventory that holds the operator key and the hosts' SSH host keys. */
export const LAB_KEY_DIR = '.infra-lab'
export const OPERATOR_KEY = `${LAB_KEY_DIR}/id_ed25519`

/** Is this text an inventory written by `infra lab up` (the marker within its first lines)? */
export function isLabInventory(text: string): boolean {
  return text.split('\n').slice(0, 5).some((l) => l.trim() === LAB_MARKER)
}

/** The lab inventory: a ready infra.yaml for the planned hosts. `schemaLine` is its first line. */
export function renderLabInventory(plan: LabPlan, schemaLine: string): string {
  const webHosts = plan.hosts.filter((h) => h.role === 'web')
  const nodes = webHosts.map((h) => `    - {name: ${h.name}, address: ${h.privateAddress}${h.standby ? ', standby: true' : ''}}`)
  return [
    schemaLine,
    LAB_MARKER,
    `# ${plan.web} active + ${plan.standby} standby web node(s) behind one bastion, on this machine.`,
    `domain: ${LAB_DOMAIN}`,
    `aliases: [${LAB_ALIASES.join(', ')}]`,
    'ssh:',
    '  user: root',
    `  privateKey: ${OPERATOR_KEY}`,
    'bastion:',
    `  name: ${BASTION_NAME}`,
    `  publicAddress: ${BASTION_PUBLIC_ADDRESS}`,
    `  privateAddress: ${BASTION_PRIVATE_ADDRESS}`,
    `  privateNetwork: ${PRIVATE_NETWORK}`,
    'web:',
    '  nodes:',
    ...nodes,
    'scaling:',
    `  max: ${Math.min(3, webHosts.length)}`,
    'tls:',
    '  mode: self-signed',
    '',
  ].join('\n')
}
