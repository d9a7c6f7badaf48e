/**
 * `keyfleet scep challenge --profile P --subject S [--san-email E] [--san-upn U] [--device D] [--ttl MIN]`:
 * prints a one-time challenge password bound to that profile, subject and SAN.
 */
import { KeyfleetError } from '../errors.ts';
import { StoreChallengeValidator } from '../scep/challenge.ts';
import { openContext } from './context.ts';
import { parseOptions, writeOutput } from './io.ts';

const USAGE = 'Usage: keyfleet scep challenge --profile P --subject S [--san-email E] [--san-upn U] [--device ID] [--ttl MINUTES] [--data DIR]';

export async function scepCommand(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb !== 'challenge') throw new KeyfleetError('KF_USAGE', USAGE);
  const { values } = parseOptions(
    rest,
    {
      data: { type: 'string' },
      profile: { type: 'string' },
      subject: { type: 'string' },
      'san-email': { type: 'string' },
      'san-upn': { type: 'string' },
      device: { type: 'string' },
      ttl: { type: 'string' },
    },
    USAGE,
  );
  if (values.subject === undefined) throw new KeyfleetError('KF_USAGE', `--subject is required\n${USAGE}`);
  const ttlMinutes = values.ttl === undefined ? 60 : Number(values.ttl);
  if (!(ttlMinutes > 0 && ttlMinutes <= 7 * 24 * 60)) throw new KeyfleetError('KF_USAGE', '--ttl must be between 1 minute and 7 days (in minutes)');
  const profile = values.profile ?? 'default';
  const ctx = await openContext(values.data ?? './data');
  try {
    if (!(await ctx.tenant.scep.getProfile(profile))) throw new KeyfleetError('KF_NOT_FOUND', `no SCEP profile "${profile}" (keyfleet ca init creates "default")`);
    const issued = await new StoreChallengeValidator(ctx.tenant.scep).issueChallenge({
      profile,
      subject: values.subject,
      ...(values['san-email'] !== undefined ? { sanEmail: values['san-email'] } : {}),
      ...(values['san-upn'] !== undefined ? { sanUpn: values['san-upn'] } : {}),
      ...(values.device !== undefined ? { deviceId: values.device } : {}),
      ttlMs: ttlMinutes * 60_000,
    });
    await writeOutput(undefined, `${issued.password}\n`);
    process.stderr.write(`keyfleet: one-time challenge for profile "${profile}", valid until ${issued.expiresAt.toISOString()}\n`);
    return 0;
  } finally {
    await ctx.close();
  }
}
