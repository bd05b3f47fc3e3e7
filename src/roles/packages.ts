/**
 * The one list of Debian packages per role. The provisioner installs these (skipping what
 * dpkg-query reports as installed) and the lab image is built with all of them, because a lab
 * host has no route to Debian's mirror.
 */
export const COMMON_PACKAGES = ['openssh-server', 'nftables', 'unattended-upgrades', 'cron', 'curl', 'ca-certificates', 'procps', 'iproute2', 'prometheus-node-exporter'] as const
export const BASTION_PACKAGES = ['haproxy', 'socat', 'openssl'] as const
export const WEB_PACKAGES = ['nginx'] as const
/**
 * With an `app` in the inventory: Docker Engine on every web node (standby nodes too) and on the
 * bastion (the remote builder), and the bastion's image registry (Debian's CNCF Distribution 2.8).
 */
export const APP_PACKAGES = ['docker.io'] as const
export const REGISTRY_PACKAGES = ['docker-registry'] as const

export function packagesFor(role: 'bastion' | 'web', app = false): string[] {
  const roleSet = role === 'bastion' ? BASTION_PACKAGES : WEB_PACKAGES
  const appSet = app ? [...APP_PACKAGES, ...(role === 'bastion' ? REGISTRY_PACKAGES : [])] : []
  return [...COMMON_PACKAGES, ...roleSet, ...appSet]
}

/** What a lab host needs beyond the role packages to boot as a systemd host. */
export const LAB_BOOT_PACKAGES = ['systemd-sysv', 'dbus', 'iputils-ping', 'netcat-openbsd', 'less'] as const

/** Every package of every role plus the boot set: the lab image's list (its cache key). */
export function labImagePackages(): string[] {
  return [...new Set([...COMMON_PACKAGES, ...BASTION_PACKAGES, ...WEB_PACKAGES, ...APP_PACKAGES, ...REGISTRY_PACKAGES, ...LAB_BOOT_PACKAGES])].sort()
}
