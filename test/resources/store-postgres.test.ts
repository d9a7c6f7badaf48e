import { postgresBackend } from '../store/backends.ts';
import { resourcesStoreConformance } from './store-conformance.ts';

resourcesStoreConformance(await postgresBackend());
