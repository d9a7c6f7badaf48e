import { storeConformance } from './conformance.ts';
import { postgresBackend } from './backends.ts';

storeConformance(await postgresBackend());
