import { sqliteBackend } from '../store/backends.ts';
import { resourcesStoreConformance } from './store-conformance.ts';

resourcesStoreConformance(sqliteBackend());
