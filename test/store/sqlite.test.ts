import { storeConformance } from './conformance.ts';
import { sqliteBackend } from './backends.ts';

storeConformance(sqliteBackend());
