/**
 * The schema's versions, oldest first. A released migration is never edited:
 * a change is a new file. Names sort in order of application.
 */
import type { Migration, MigrationProvider } from 'kysely/migration';
import type { SqlFlavor } from './flavor.ts';
import { tenants } from './0001_tenants.ts';
import { ca } from './0002_ca.ts';
import { scep } from './0003_scep.ts';
import { directory } from './0004_directory.ts';
import { accessAudit } from './0005_access_audit.ts';
import { resources } from './0006_resources.ts';
import { devices } from './0007_devices.ts';
import { delivery } from './0008_delivery.ts';
import { issuedRequester } from './0009_issued_requester.ts';

export type { SqlFlavor } from './flavor.ts';

export function migrationProvider(flavor: SqlFlavor): MigrationProvider {
  return {
    async getMigrations(): Promise<Record<string, Migration>> {
      return {
        '0001_tenants': tenants(flavor),
        '0002_ca': ca(flavor),
        '0003_scep': scep(flavor),
        '0004_directory': directory(flavor),
        '0005_access_audit': accessAudit(flavor),
        '0006_resources': resources(flavor),
        '0007_devices': devices(flavor),
        '0008_delivery': delivery(flavor),
        '0009_issued_requester': issuedRequester(),
      };
    },
  };
}
