/** The sections the bastion's agents and alerts read: scaling, healing, alerts. */
import {z} from 'zod'

import {durationUpTo, expected, mappingOf, show, wholeNumber} from './base.js'
import {envVarName} from './fields.js'

export const scalingSchema = mappingOf({
  cpuPercent: z
    .number({error: expected('a percentage from 1 to 100')})
    .min(1)
    .max(100)
    .default(80)
    .describe('Average CPU use of the active nodes above which one standby node is started.'),
  sustainFor: durationUpTo('24h')
    .default('5m')
    .describe('How long the CPU use must stay above cpuPercent before scaling up. At most 24h: the scaler keeps that long a history of samples.'),
  recheckEvery: durationUpTo('24h')
    .default('15m')
    .describe('After a scale-up, how long to wait before deciding again. At most 24h: a longer pause is `infra scale pause`.'),
  min: wholeNumber(1, 1000).default(1).describe('Fewest active web nodes.'),
  max: wholeNumber(1, 1000)
    .optional()
    .describe('Most active web nodes. Default: 3, but at least min and at most the number of web nodes.'),
  margin: z
    .number({error: expected('a number of percentage points from 0 to 99')})
    .min(0)
    .max(99)
    .default(20)
    .describe('Scale-in only when the load spread over one node fewer stays below cpuPercent minus this many points.'),
})
  .prefault({})
  .describe('Scale-up: start standby nodes when the active ones stay busy.')

export const healingSchema = mappingOf({
  every: durationUpTo('1h')
    .default('1m')
    .describe('How often the healer checks every node. At most 1h: a failed node waits up to this long for its first restart.'),
  attempts: wholeNumber(1, 20).default(3).describe('Restart attempts on a failed node before a standby node replaces it.'),
})
  .prefault({})
  .describe('Self-healing: restart failed web nodes, then replace them with standby nodes.')

const smtpUserError = expected('an SMTP user name', 'printable ASCII without spaces, ", \\ or :, at most 256 characters, e.g. "alerts@example.com"')

export const alertsSchema = mappingOf({
  email: z.email({error: expected('an e-mail address')}).optional().describe('Where alert e-mails go.'),
  // Refused: a webhook URL is a bearer secret (Slack and most chat hooks); it belongs in the
  // environment (webhookEnv), never in the inventory, a plan diff or the bastion's scripts.
  webhook: z
    .never({
      // The value is not echoed: it is the secret.
      error: (iss) =>
        `${typeof iss.input === 'string' ? 'a URL' : show(iss.input)} is not accepted here any more: a webhook URL is a secret (anyone who has it can post to it), so it must not be in the inventory. Move the URL to an environment variable and set alerts.webhookEnv: NAME (e.g. export INFRA_ALERT_WEBHOOK=... and alerts.webhookEnv: INFRA_ALERT_WEBHOOK)`,
    })
    .optional()
    .describe('Removed (refused): put the URL in an environment variable and name it in alerts.webhookEnv.'),
  webhookEnv: envVarName('INFRA_ALERT_WEBHOOK')
    .optional()
    .describe(
      'Environment variable holding the http(s) URL that receives a JSON POST for every alert, read at provision time (stored on the bastion, mode 600; never shown or logged).',
    ),
  smtp: mappingOf({
    url: z
      .string({error: expected('an smtp:// or smtps:// URL', 'e.g. "smtp://mail.example.com:587"')})
      .regex(/^smtps?:\/\/[^\s/@]+(:\d{1,5})?\/?$/, {error: expected('an smtp:// or smtps:// URL', 'e.g. "smtp://mail.example.com:587"')})
      .describe('SMTP server the bastion sends alert e-mails through (curl).'),
    from: z.email({error: expected('an e-mail address')}).optional().describe('Sender address. Default: infra@<domain>.'),
    // It goes into curl's config (`user = "USER:PASSWORD"`): no quote, backslash, colon (the
    // user/password separator), space or control character; e-mail addresses fit.
    user: z
      .string({error: smtpUserError})
      .regex(/^[!#-9;-[\]-~]{1,256}$/, {error: smtpUserError})
      .optional()
      .describe('SMTP user name, when the server needs a login: printable ASCII without spaces, ", \\ or : (e.g. an e-mail address).'),
    passwordEnv: envVarName('INFRA_SMTP_PASSWORD')
      .optional()
      .describe('Environment variable holding the SMTP password at provision time (stored on the bastion, mode 600; never logged).'),
  })
    .optional()
    .describe('The SMTP server for alerts.email.'),
})
  .prefault({})
  .describe('Where alerts go (scaling, healing, a node down). Both are optional.')
