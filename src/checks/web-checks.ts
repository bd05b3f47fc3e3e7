/** Host checks of the web nodes: private addresses only, nginx, the health path. */
import {configOf} from '../inventory/config.js'
import {inCidrText, isNonPublicIPv4} from '../host/ipv4.js'
import type {HostCheck} from './types.js'
import {fail, pass, skip} from './verdict.js'

/** In the order doctor reports them. */
export const WEB_CHECKS: HostCheck[] = [
  {
    id: 'no-public-address',
    roles: ['web'],
    summary: 'a web node has only private addresses',
    run: ({facts}) => {
      const pub = facts.addresses.filter((a) => !isNonPublicIPv4(a.address) && !inCidrText(a.address, '127.0.0.0/8') && !inCidrText(a.address, '169.254.0.0/16'))
      if (pub.length > 0) {
        const v = pub.map((a) => `${a.address}/${a.prefix} on ${a.iface}`).join(', ')
        return fail(v, 'a web node must not have a public address: it bypasses the bastion', `remove it: \`infra exec <node> -- ip addr del ${pub[0].address}/${pub[0].prefix} dev ${pub[0].iface}\` and from the host's network configuration`)
      }
      return pass(facts.addresses.map((a) => a.address).join(', ') || 'none', 'private addresses only')
    },
  },
  {
    id: 'web-service',
    roles: ['web'],
    summary: "nginx state matches the role HAProxy gives the node",
    run: ({facts, host, bastion}) => {
      const nginx = facts.services.get('nginx') ?? 'unknown'
      const row = bastion?.stat?.find((r) => r.backend === 'web' && r.server === host.name)
      const role = row ? (row.status.startsWith('MAINT') ? 'maint' : 'active') : host.standby ? 'maint' : 'active'
      const how = row ? `HAProxy: ${row.status}` : `inventory: ${host.standby ? 'standby' : 'active'}`
      const v = `nginx ${nginx}, ${how}`
      if (role === 'active' && nginx !== 'active') {
        return fail(v, 'HAProxy sends traffic to this node but nginx is not running', `\`infra exec ${host.name} -- systemctl start nginx\` (or \`infra provision\`); see \`journalctl -u nginx\``)
      }
      return pass(v, role === 'maint' ? 'standby node (nginx may be stopped)' : 'serving')
    },
  },
  {
    id: 'web-health',
    roles: ['web'],
    summary: 'the health path answers 200 on the node',
    run: ({facts, inventory, host}) => {
      const nginx = facts.services.get('nginx')
      const url = `http://${host.privateAddress}:${inventory.web.port}${configOf(inventory).healthPath}`
      if (nginx !== 'active') return skip(`skipped: nginx ${nginx ?? 'unknown'} (see web-service)`)
      if (facts.healthCode === 200) return pass('200', `${url} answers`)
      return fail(String(facts.healthCode || 'no answer'), `${url} does not answer 200`, `\`infra exec ${host.name} -- curl -si ${url}\`; \`infra provision\` restores the nginx site`)
    },
  },
]
