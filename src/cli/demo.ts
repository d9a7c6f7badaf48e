/**
 * `keyfleet demo`: issue 5's whole story in one command, so a newcomer sees
 * the system work. A fresh service runs in this process on a free loopback
 * port; the admin sets it up through the admin API, the PFX connector and
 * five Company Portal agents do their part, mail goes from Alice to Bob,
 * Bob leaves Sales and Alice's iPad is retired — one numbered line per
 * step, then the devices as the admin sees them. test/e2e/story.test.ts is
 * the same story as a test, through the command and separate processes.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { KeyfleetError, isKeyfleetError } from '../errors.ts';
import { helpRequested } from './admin.ts';
import { DemoStory, type SummaryRow } from './demo-story.ts';
import { type DemoService, startDemoService } from './demo-service.ts';
import { parseOptions } from './io.ts';

const USAGE = `Usage: keyfleet demo [--data DIR] [--keep] [--quiet | --json]
Runs the whole story against a fresh Keyfleet started in this process on 127.0.0.1 (SQLite, a new CA):
users, group Sales, Outlook, trusted roots, SCEP signing, imported encryption certificates, the policy,
the PFX connector, five devices, mail from Alice to Bob, Bob leaving Sales, Alice's iPad retired.
  --data DIR  keep the service's data and the devices' state in DIR (new or empty), not a temporary directory
  --keep      keep the temporary directory (its path is printed)
  --quiet     print only the summary of devices
  --json      print one JSON document with what the story found`;

type Mode = 'narrate' | 'quiet' | 'json';

export async function demoCommand(argv: string[]): Promise<number> {
  if (helpRequested(argv, USAGE)) return 0;
  const { values } = parseOptions(argv, { data: { type: 'string' }, keep: { type: 'boolean' }, quiet: { type: 'boolean' }, json: { type: 'boolean' } }, USAGE);
  if (values.quiet && values.json) throw new KeyfleetError('KF_USAGE', `--quiet and --json do not go together\n${USAGE}`);
  const mode: Mode = values.json ? 'json' : values.quiet ? 'quiet' : 'narrate';
  const dir = values.data === undefined ? mkdtempSync(join(tmpdir(), 'keyfleet-demo-')) : freshDirectory(values.data);
  const keep = values.data !== undefined || values.keep === true;
  const say = (line: string) => {
    if (mode === 'narrate') process.stdout.write(`${line}\n`);
  };
  // Interrupted: the in-process service goes with the process, but a temporary directory would stay behind.
  const interrupted = (signal: NodeJS.Signals) => {
    if (!keep) rmSync(dir, { recursive: true, force: true });
    process.stderr.write(`keyfleet demo: ${signal}; stopped\n`);
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  const started = performance.now();
  let number = 0;
  let current = 'start the service';
  let service: DemoService | undefined;
  let story: DemoStory | undefined;
  try {
    say('Keyfleet demo: the whole S/MIME story against a fresh local service, step by step.');
    service = await startDemoService(dir, () => {});
    say(`${label(++number)}Started Keyfleet at ${service.origin} with a new CA: SCEP, OCSP and the admin, device and connector APIs.`);
    story = new DemoStory(service, dir);
    for (const step of story.steps()) {
      current = step.name;
      const said = await step.run();
      for (const line of typeof said === 'string' ? [said] : said) say(`${label(++number)}${line}`);
    }
    current = 'read the devices from the admin API';
    const rows = await story.summary();
    const seconds = Math.round((performance.now() - started) / 100) / 10;
    if (mode === 'json') {
      const devices = story.facts.devices;
      process.stdout.write(
        `${JSON.stringify(
          {
            ok: true,
            seconds,
            service: service.origin,
            dataDir: keep ? resolve(dir) : null,
            ...story.facts,
            signingSerials: devices.flatMap((d) => (d.signingSerial === undefined ? [] : [d.signingSerial])),
            summary: rows,
          },
          null,
          2,
        )}\n`,
      );
    } else {
      if (mode === 'narrate') say('\nThe devices, as the admin sees them (GET /api/v1/managedDevices and .../status):');
      process.stdout.write(table(rows));
      say(`\nDone in ${seconds} s. ${keep ? `The data stays in ${resolve(dir)}.` : 'The service is stopped and its temporary data removed.'}`);
    }
    return 0;
  } catch (e) {
    const why = isKeyfleetError(e) ? `${e.code}: ${e.message.split('\n')[0]}` : e instanceof Error ? e.message.split('\n')[0] : String(e);
    process.stderr.write(`keyfleet demo: step ${number + 1} (${current}) failed: ${why}\n`);
    return 1;
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    await story?.stop();
    await service?.close().catch(() => {});
    if (!keep) rmSync(dir, { recursive: true, force: true });
    else if (mode === 'quiet') process.stderr.write(`keyfleet demo: data in ${resolve(dir)}\n`);
  }
}

const label = (n: number) => `${String(n).padStart(2)}. `;

/** --data: a new or empty directory. An existing store would make the story start in the middle. */
function freshDirectory(path: string): string {
  if (existsSync(path)) {
    if (!statSync(path).isDirectory()) throw new KeyfleetError('KF_USAGE', `--data ${path} is not a directory`);
    if (readdirSync(path).length > 0) throw new KeyfleetError('KF_USAGE', `--data ${path} is not empty; the demo needs a new or empty directory`);
    return path;
  }
  mkdirSync(path, { recursive: true, mode: 0o700 });
  return path;
}

function table(rows: readonly SummaryRow[]): string {
  const head = ['DEVICE', 'USER', 'STATE', 'POLICY', 'CERTIFICATES'];
  const cells = rows.map((r) => [
    r.device,
    r.user,
    r.managementState,
    r.policy,
    Object.entries(r.certificates).map(([state, n]) => `${n} ${state}`).join(', ') || 'none',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  return [head, ...cells].map((c) => c.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}
