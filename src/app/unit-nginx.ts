/**
 * A site unit's nginx server block on a web node (docs/SITES.md), written by deploy beside the
 * unit's upstream: nginx routes the unit's host names (HAProxy passes Host through) to the slot
 * `infra-app -u KEY switch` names in the upstream file. Node-independent: the `listen` line and the
 * X-Served-By header are the node's own file (NGINX_LISTEN_FILE, written by provision).
 */
import {NGINX_LISTEN_FILE} from '../host/paths.js'
import type {DeployUnit} from '../inventory/units.js'

/** nginx's name for the unit's upstream: "infra_u_shop__preprod". */
export function upstreamName(key: string): string {
  return `infra_u_${key.replaceAll('-', '_')}`
}

export function unitNginxConf(unit: DeployUnit, healthPath: string): string {
  const key = unit.key
  if (key === undefined || unit.paths.nginxConf === undefined) throw new Error('the single app is served by the node\'s default server')
  const up = upstreamName(key)
  return [
    `# Written by infra deploy: the ${unit.label} unit (${unit.hosts.join(', ')}). \`infra site rm\` removes it.`,
    `upstream ${up} {`,
    `    include ${unit.paths.upstream};`,
    '    keepalive 16;',
    '}',
    '',
    'server {',
    `    include ${NGINX_LISTEN_FILE};`,
    `    server_name ${unit.hosts.join(' ')};`,
    '    server_tokens off;',
    '    access_log syslog:server=unix:/dev/log,tag=nginx,nohostname infra_journal;',
    '    proxy_http_version 1.1;',
    '    proxy_set_header Host $host;',
    '    proxy_set_header Upgrade $http_upgrade;',
    '    proxy_set_header Connection $infra_connection_upgrade;',
    '    proxy_set_header X-Forwarded-For $http_x_forwarded_for;',
    '    proxy_set_header X-Forwarded-Proto $http_x_forwarded_proto;',
    '    proxy_read_timeout 60s;',
    `    location = ${healthPath} {`,
    '        access_log off;',
    `        proxy_pass http://${up};`,
    '    }',
    '    location / {',
    `        proxy_pass http://${up};`,
    '    }',
    '}',
    '',
  ].join('\n')
}
