/** The `keyfleet` command. Subcommands live beside this file, one per noun. */
import { KeyfleetError } from '../errors.ts';

const HELP = `keyfleet — open S/MIME certificate management

Usage:
  keyfleet smime sign|verify|encrypt|decrypt|inspect [options]   S/MIME engine (see README)
  keyfleet ca init|show|issue|revoke|crl|list [options]          the certificate authority (state under --data)
  keyfleet p12 import|export|inspect [options]                   PKCS#12 files to and from PEM
  keyfleet scep challenge --profile P --subject S [--san-email E] a one-time SCEP challenge
  keyfleet serve [--port N] [--data DIR]                         SCEP, CRL and OCSP over HTTP(S)
  keyfleet admin token create|list|revoke [options]              admin API tokens (directly in --data)
  keyfleet users|groups list|show|create|update|delete|…         the directory over the admin API (KEYFLEET_URL, KEYFLEET_TOKEN)
  keyfleet apps|profiles|policies|assignments …                 apps, certificate profiles, S/MIME policies, assignments (API)
  keyfleet pfx import|list|show|delete [options]                 imported PFX certificates (encrypted locally, then uploaded)
  keyfleet devices list|show|status|retire|wipe|delete           managed devices and their policy and certificate status (API)
  keyfleet connector keygen|register|list|revoke|run …           the PFX connector: its key pair, its credential, the process
  keyfleet device enroll|checkin|status|notifications|portal|keystore …  one enrolled device (the Company Portal agent)
  keyfleet audit list|verify [options]                           the hash-chained audit log
  keyfleet demo [--data DIR] [--keep] [--quiet|--json]           the whole story against a fresh local service, narrated
  keyfleet --help

Run \`keyfleet <command> --help\` for a command's options.
`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case '--help':
      case '-h':
      case 'help':
        process.stdout.write(HELP);
        return 0;
      case 'smime': {
        const { smimeCommand } = await import('./smime.ts');
        return await smimeCommand(rest);
      }
      case 'ca': {
        const { caCommand } = await import('./ca.ts');
        return await caCommand(rest);
      }
      case 'scep': {
        const { scepCommand } = await import('./scep.ts');
        return await scepCommand(rest);
      }
      case 'serve': {
        const { serveCommand } = await import('./serve.ts');
        return await serveCommand(rest);
      }
      case 'p12': {
        const { p12Command } = await import('./p12.ts');
        return await p12Command(rest);
      }
      case 'admin': {
        const { adminCommand } = await import('./admin.ts');
        return await adminCommand(rest);
      }
      case 'users': {
        const { usersCommand } = await import('./users.ts');
        return await usersCommand(rest);
      }
      case 'groups': {
        const { groupsCommand } = await import('./groups.ts');
        return await groupsCommand(rest);
      }
      case 'audit': {
        const { auditCommand } = await import('./audit.ts');
        return await auditCommand(rest);
      }
      case 'apps': {
        const { appsCommand } = await import('./apps.ts');
        return await appsCommand(rest);
      }
      case 'profiles': {
        const { profilesCommand } = await import('./profiles.ts');
        return await profilesCommand(rest);
      }
      case 'policies': {
        const { policiesCommand } = await import('./policies.ts');
        return await policiesCommand(rest);
      }
      case 'assignments': {
        const { assignmentsCommand } = await import('./assignments.ts');
        return await assignmentsCommand(rest);
      }
      case 'pfx': {
        const { pfxCommand } = await import('./pfx.ts');
        return await pfxCommand(rest);
      }
      case 'devices': {
        const { devicesCommand } = await import('./devices.ts');
        return await devicesCommand(rest);
      }
      case 'device': {
        const { deviceCommand } = await import('./device.ts');
        return await deviceCommand(rest);
      }
      case 'connector': {
        const { connectorCommand } = await import('./connector.ts');
        return await connectorCommand(rest);
      }
      case 'demo': {
        const { demoCommand } = await import('./demo.ts');
        return await demoCommand(rest);
      }
      default:
        throw new KeyfleetError('KF_USAGE', `unknown command "${command}"; see keyfleet --help`);
    }
  } catch (e) {
    return reportError(e);
  }
}

/** One readable line on stderr and a non-zero exit; internal causes are not printed. */
export function reportError(e: unknown): number {
  if (e instanceof KeyfleetError) {
    // One line: usage errors carry the usage text after the first line; `--help` shows it.
    const [first] = e.message.split('\n');
    const hint = e.code === 'KF_USAGE' && e.message.includes('\n') ? ' (add --help for usage)' : '';
    process.stderr.write(`keyfleet: ${e.code}: ${first}${hint}\n`);
    return e.code === 'KF_USAGE' ? 2 : 1;
  }
  process.stderr.write(`keyfleet: internal error: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}\n`);
  return 1;
}
