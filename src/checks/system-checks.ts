/** Host checks of the operating system and its resources, on every host. */
import type {HostCheck} from './types.js'
import {fail, pass, PROVISION, warn} from './verdict.js'

export const osCheck: HostCheck = {
  id: 'os',
  roles: ['bastion', 'web'],
  summary: 'Debian 12 (bookworm)',
  run: ({facts}) => {
    const v = facts.os.prettyName || `${facts.os.id} ${facts.os.versionId}`
    return facts.os.id === 'debian' && facts.os.versionId === '12'
      ? pass(v, 'supported operating system')
      : fail(v || 'unknown', 'infra supports Debian 12 only', 'reinstall the host with Debian 12 (bookworm)')
  },
}

export const timeCheck: HostCheck = {
  id: 'time',
  roles: ['bastion', 'web'],
  summary: 'clock skew against this machine',
  run: ({facts, localTime, thresholds: t}) => {
    if (!facts.time) return fail('unknown', 'could not read the host clock', 'check `date` on the host')
    const skew = Math.abs(facts.time - localTime)
    const v = `${skew.toFixed(0)}s skew`
    const fix = 'enable time sync on the host: `timedatectl set-ntp true` (systemd-timesyncd), and on this machine'
    if (skew >= t.skewFailSec) return fail(v, `clock differs from this machine by ${skew.toFixed(0)} s (fail at ${t.skewFailSec} s)`, fix)
    if (skew >= t.skewWarnSec) return warn(v, `clock differs from this machine by ${skew.toFixed(0)} s (warn at ${t.skewWarnSec} s)`, fix)
    return pass(v, `clock in sync (under ${t.skewWarnSec} s)`)
  },
}

export const diskCheck: HostCheck = {
  id: 'disk',
  roles: ['bastion', 'web'],
  summary: 'root file system use',
  run: ({facts, thresholds: t}) => {
    const u = facts.diskUsedPercent
    if (u === undefined || Number.isNaN(u)) return fail('unknown', 'could not read disk use (df -P /)', 'check `df -h /` on the host')
    const fix = 'free space on / (`du -xh / | sort -h | tail`, `apt-get clean`, `journalctl --vacuum-size=200M`)'
    if (u >= t.diskFailPercent) return fail(`${u}% used`, `/ is ${u}% full (fail at ${t.diskFailPercent}%)`, fix)
    if (u >= t.diskWarnPercent) return warn(`${u}% used`, `/ is ${u}% full (warn at ${t.diskWarnPercent}%)`, fix)
    return pass(`${u}% used`, `under ${t.diskWarnPercent}%`)
  },
}

export const memoryCheck: HostCheck = {
  id: 'memory',
  roles: ['bastion', 'web'],
  summary: 'available memory',
  run: ({facts, thresholds: t}) => {
    if (!facts.memTotalKb || facts.memAvailableKb === undefined) return fail('unknown', 'could not read /proc/meminfo', 'check `free -m` on the host')
    const p = Math.round((facts.memAvailableKb / facts.memTotalKb) * 100)
    const v = `${p}% available (${Math.round(facts.memAvailableKb / 1024)} MiB)`
    const fix = 'find the process using memory (`ps aux --sort=-rss | head`) or give the host more memory'
    if (p < t.memFailAvailPercent) return fail(v, `under ${t.memFailAvailPercent}% of memory available`, fix)
    if (p < t.memWarnAvailPercent) return warn(v, `under ${t.memWarnAvailPercent}% of memory available`, fix)
    return pass(v, `over ${t.memWarnAvailPercent}% available`)
  },
}

export const loadCheck: HostCheck = {
  id: 'load',
  roles: ['bastion', 'web'],
  summary: '1-minute load average per CPU',
  run: ({facts, thresholds: t}) => {
    if (facts.load1 === undefined || Number.isNaN(facts.load1)) return fail('unknown', 'could not read /proc/loadavg', 'check `uptime` on the host')
    const per = facts.load1 / (facts.cpus || 1)
    const v = `${facts.load1.toFixed(2)} on ${facts.cpus} CPU`
    const fix = 'find what keeps the host busy (`top`); for web nodes, see scaling.cpuPercent in infra.yaml'
    if (per >= t.loadFailPerCpu) return fail(v, `load over ${t.loadFailPerCpu} per CPU`, fix)
    if (per >= t.loadWarnPerCpu) return warn(v, `load over ${t.loadWarnPerCpu} per CPU`, fix)
    return pass(v, `under ${t.loadWarnPerCpu} per CPU`)
  },
}

export const unattendedUpgradesCheck: HostCheck = {
  id: 'unattended-upgrades',
  roles: ['bastion', 'web'],
  summary: 'unattended-upgrades installed and enabled',
  run: ({facts}) => {
    if (!facts.unattendedInstalled) return fail('not installed', 'security updates are not installed automatically', PROVISION)
    if (facts.unattendedPeriodic !== '1') {
      return fail(`APT::Periodic::Unattended-Upgrade "${facts.unattendedPeriodic ?? ''}"`, 'unattended-upgrades is disabled', PROVISION + ' (/etc/apt/apt.conf.d/20auto-upgrades)')
    }
    return pass('enabled', 'security updates install automatically')
  },
}
