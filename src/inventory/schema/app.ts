/** The application section (`app`, `deploy`, `registry`): what `infra deploy` runs on the web nodes. */
import {z} from 'zod'

import {durationUpTo, expected, mappingOf, port, show, wholeNumber} from './base.js'
import {envVarName, healthPathSchema} from './fields.js'

const imageError = expected('an image name', 'lowercase letters, digits and . _ - / :, e.g. "shop" (built into the fleet registry) or "ghcr.io/acme/shop"')
/** An image reference without a tag or digest: `[registry[:port]/]path`. The tag is the release version. */
export const imageName = z
  .string({error: imageError})
  .regex(/^(?:[a-z0-9.-]+(?::\d{1,5})?\/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/, {error: imageError})
  .max(200, {error: imageError})

/** The registry host an image names (a first path component with a dot, a colon or "localhost": Docker's rule), or undefined for the fleet registry. */
export function imageRegistryHost(image: string): string | undefined {
  const slash = image.indexOf('/')
  const first = slash < 0 ? '' : image.slice(0, slash)
  return first !== '' && (first.includes('.') || first.includes(':') || first === 'localhost') ? first : undefined
}

const envKeyError = expected('an environment variable name', 'letters, digits and _, not starting with a digit, e.g. "RAILS_ENV"')
export const envKey = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, {error: envKeyError})

const envValueError = expected('a plain value (a string, number or boolean, on one line)')
/** A plain env value: string, number or boolean, on one line (an env file holds one per line). */
export const envValue = z
  .union([z.string(), z.number(), z.boolean()], {error: envValueError})
  .transform((v) => String(v))
  .refine((v) => !/[\n\r\0]/.test(v), {error: 'has a line break or a NUL, which an env file cannot hold'})

/** A word of a command (app.command, app.release): one argument, so no line break (the run file has one word per line) and no NUL. */
const commandWord = z
  .string({error: expected('a word')})
  .refine((v) => !/[\n\r\0]/.test(v), {error: 'has a line break or a NUL; give each argument as its own list item (a multi-line script belongs in the image)'})

const volumeError = expected('a volume', '"NAME:/path/in/container", NAME of letters, digits, _ . -, e.g. "data:/var/lib/app"')
export const volumeSpec = z.string({error: volumeError}).regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*:\/[^\s:]*$/, {error: volumeError})

const memoryError = expected('a memory size', 'a whole number followed by m or g, e.g. "512m"')

/** Registry credentials for an image in an outside registry (Docker Hub, GHCR…): names of environment variables. */
export const registryAuthSchema = mappingOf({
  usernameEnv: envVarName('REGISTRY_USER').describe('Environment variable holding the registry user name, read at deploy time.'),
  passwordEnv: envVarName('REGISTRY_TOKEN').describe('Environment variable holding the registry password or token, read at deploy time (never logged, never on a command line).'),
}).describe('Credentials for app.image\'s own registry; the nodes log in with them before pulling.')

export const appSchema = mappingOf({
  image: imageName.describe(
    'The image, without a tag (the tag is the release version). A name without a registry host ("shop") lives in the bastion\'s fleet registry (`infra deploy --build` or `--archive` puts it there); "ghcr.io/acme/shop" is pulled from that registry.',
  ),
  port: port().default(8080).describe('The port the application listens on inside its container.'),
  healthCheck: mappingOf({
    path: healthPathSchema.optional().describe('Path that answers 200 when a container is ready. Default: web.healthCheck.path (HAProxy checks it through nginx too).'),
    interval: durationUpTo('1m').default('1s').describe('Time between two readiness probes of a new container during a deploy.'),
  })
    .prefault({})
    .describe('How a deploy decides that a new container is ready.'),
  env: z
    .record(envKey, envValue, {error: expected('a mapping of NAME: value')})
    .default({})
    .describe('Plain environment values of the container. Changing one is a new release.'),
  secrets: z
    .array(envKey, {error: expected('a list of environment variable names')})
    .default([])
    .describe('Names of secret environment values: read from the operator\'s environment, else from app.secretsFile; sent to the nodes in a 0600 env file, never shown.'),
  secretsFile: z
    .string()
    .min(1)
    .default('secrets.env')
    .describe('A NAME=value file beside the inventory (mode 0600 or stricter) with the values of app.secrets the environment does not set.'),
  command: z
    .array(commandWord, {error: expected('a list of words', 'e.g. ["bin/server", "--port", "8080"]')})
    .min(1)
    .optional()
    .describe('The container\'s command (default: the image\'s).'),
  release: z
    .array(commandWord, {error: expected('a list of words', 'e.g. ["bin/migrate"]')})
    .min(1)
    .optional()
    .describe('A command run once per deploy in a one-off container of the new release (e.g. database migrations), on the first active node, before any traffic moves; a failure stops the deploy.'),
  memory: z
    .string({error: memoryError})
    .regex(/^[1-9]\d*[mg]$/, {error: memoryError})
    .optional()
    .describe('Memory limit of a container (docker --memory).'),
  cpus: z
    .number({error: expected('a number of CPUs, e.g. 0.5')})
    .positive()
    .max(256)
    .optional()
    .describe('CPU limit of a container (docker --cpus).'),
  volumes: z
    .array(volumeSpec, {error: expected('a list of volumes')})
    .default([])
    .describe('Named volumes mounted in every release\'s container; they survive releases.'),
  keep: wholeNumber(1, 50).default(5).describe('Releases whose images and stopped containers each node keeps for rollback; older ones are pruned.'),
  registry: registryAuthSchema.optional(),
}).describe('The application: a container image deployed on every web node by `infra deploy`.')

export const deploySchema = mappingOf({
  batch: wholeNumber(1, 1000).default(1).describe('How many active nodes switch to the new release at once.'),
  timeout: durationUpTo('30m').default('60s').describe('How long a new container has to answer its health path before the deploy fails.'),
  drain: durationUpTo('1h').default('30s').describe('After a switch, how long the old container may finish its requests (it is stopped earlier when its connections end).'),
  onFailure: z
    .enum(['rollback', 'halt'], {error: (iss) => `${show(iss.input)} is not "rollback" or "halt"`})
    .default('rollback')
    .describe('When a node fails: switch the nodes already done back to the previous release (rollback), or leave them (halt).'),
  lockStale: durationUpTo('24h').default('30m').describe('A deploy lock older than this, whose holder is gone, is taken over.'),
})
  .prefault({})
  .describe('How `infra deploy` and `infra rollback` roll through the nodes.')

export const registrySchema = mappingOf({
  port: port().default(5000).describe('Port of the fleet registry on the bastion\'s private address.'),
  keep: wholeNumber(1, 100).default(10).describe('Releases whose images the fleet registry keeps; older ones are deleted and garbage-collected.'),
})
  .prefault({})
  .describe('The bastion\'s image registry (with an app): TLS from the fleet CA, authenticated, private address only.')
